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

func TestReportKeysAndErrors(t *testing.T) {
	errs := Errors("vip", func(report func(key, msg string)) {
		r := New(report)
		r.Errorf("", "whole section")
		r.At("addresses[0]").InterfaceName("interface", "")
		r.At("addresses").At("[1]").InterfaceName("interface", "a/b")
		r.OneOf("mode", "udp", "http", "tcp")
		r.Positive("interval", 0)
		r.AbsPath("hooks[0]", "relative/path")
	})
	want := []string{
		"vip: whole section",
		"vip.addresses[0].interface: required",
		`vip.addresses[1].interface: "a/b" is not a valid interface name (at most 15 characters, no '/', ':' or spaces)`,
		`vip.mode: must be one of http, tcp (got "udp")`,
		"vip.interval: must be greater than 0 (got 0s)",
		`vip.hooks[0]: must be an absolute path (got "relative/path")`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(want))
	}
	for i, e := range errs {
		if e.Error() != want[i] {
			t.Errorf("error %d = %q, want %q", i, e, want[i])
		}
	}
}
