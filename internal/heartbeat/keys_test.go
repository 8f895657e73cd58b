package heartbeat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKeys(t *testing.T) {
	k1 := writeFile(t, "k1", "  0123456789abcdef0123\n")
	k2 := writeFile(t, "k2", "another-key-of-enough-length")
	keys, err := LoadKeys(k1, k2)
	if err != nil {
		t.Fatalf("LoadKeys: %v", err)
	}
	if len(keys) != 2 || string(keys[0]) != "0123456789abcdef0123" || string(keys[1]) != "another-key-of-enough-length" {
		t.Fatalf("LoadKeys = %q", keys)
	}
}

func TestLoadKeysErrors(t *testing.T) {
	short := writeFile(t, "short", "tooshort\n")
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		paths []string
		want  string
	}{
		{nil, "no key file"},
		{[]string{missing}, missing},
		{[]string{short}, short},
		{[]string{writeFile(t, "blank", " \n\t\n")}, "need at least 16"},
	}
	for _, c := range cases {
		_, err := LoadKeys(c.paths...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadKeys(%q) error = %v, want it to mention %q", c.paths, err, c.want)
		}
	}
}
