package rule

import (
	"testing"
)

func TestCheckHostPort(t *testing.T) {
	cases := []struct {
		in     string
		listen bool
		ok     bool
	}{
		{":5405", true, true},
		{":5405", false, false},
		{"10.0.0.1:5405", false, true},
		{"[fd00::1]:5405", false, true},
		{"[fe80::1%eth0]:5405", false, true},
		{"host.example:1", false, true},
		{"host.example:65535", false, true},
		{"host.example:65536", false, false},
		{"-bad.example:80", false, false},
		{"10.0.0.1", false, false},
		{"10.0.0.1:-1", true, false},
		{"", true, false},
	}
	for _, tc := range cases {
		err := HostPort(tc.in, tc.listen)
		if (err == nil) != tc.ok {
			t.Errorf("HostPort(%q, listen=%v) = %v, want ok=%v", tc.in, tc.listen, err, tc.ok)
		}
	}
}
