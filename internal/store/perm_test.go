package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFileMode(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode       os.FileMode
		kind       FileKind
		err, warns bool
	}{
		{0o600, Secret, false, false},
		{0o640, Secret, false, false},
		{0o644, Secret, false, true},
		{0o660, Secret, true, false},
		{0o602, Secret, true, false},
		{0o755, Program, false, false},
		{0o775, Program, true, false},
		{0o757, Program, true, false},
	} {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, c.mode); err != nil {
			t.Fatal(err)
		}
		w, err := CheckFileMode(p, c.kind)
		if (err != nil) != c.err || (w != "") != c.warns {
			t.Errorf("mode %#o kind %d: warning %q, err %v", c.mode, c.kind, w, err)
		}
		if err != nil && !strings.Contains(err.Error(), p) || w != "" && !strings.Contains(w, p) {
			t.Errorf("mode %#o: the path is not named: %q %v", c.mode, w, err)
		}
	}
	if _, err := ReadSecret(filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("missing file read")
	}
}
