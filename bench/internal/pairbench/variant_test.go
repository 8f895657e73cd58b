package pairbench

import (
	"slices"
	"testing"
)

func TestParseVariants(t *testing.T) {
	vs, err := ParseVariants("kill, linkdown")
	if err != nil || !slices.Equal(vs, []Variant{Kill, LinkDown}) {
		t.Errorf("got %v %v", vs, err)
	}
	for _, bad := range []string{"", "kill,", "reboot", "Kill"} {
		if vs, err := ParseVariants(bad); err == nil {
			t.Errorf("ParseVariants(%q) = %v, want an error", bad, vs)
		}
	}
}
