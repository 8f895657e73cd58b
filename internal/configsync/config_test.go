package configsync

import (
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	good := Config{}
	good.SetDefaults()
	s := Set{}
	s.SetDefaults()
	s.Name, s.Dir = "nftables", "/etc/nftables.d"
	good.Sets = []Set{s}
	good.Substitute = map[string]string{"10.0.1.4": "10.0.1.5"}
	var errs []string
	good.Check(func(k, m string) { errs = append(errs, k+": "+m) })
	if len(errs) != 0 {
		t.Fatalf("a good section reported %v", errs)
	}
	bad := good
	bad.Sets = []Set{{Name: "x", Dir: "/", Files: []string{"../a"}, LocalLines: []string{"("}}, {Name: "x", Dir: "/etc/y"}}
	bad.Substitute = map[string]string{"a": "b", "c": "a"}
	errs = nil
	bad.Check(func(k, m string) { errs = append(errs, k+": "+m) })
	got := strings.Join(errs, "\n")
	for _, want := range []string{"sets[0].dir", "sets[0].files[0]", "sets[0].local_lines[0]", "sets[1].name: duplicate", "sets[1].files: at least one", "more than one substitution pair"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}
