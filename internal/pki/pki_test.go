package pki

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Node names become file names: one that is a path is refused before
// anything is written.
func TestGenerateRefusesPathNames(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(root, "out")
	for _, nodes := range [][]string{{"../x", "b"}, {"a", ".."}, {"a/b", "c"}, {"a", "/etc/x"}, {"a", ""}, {"a", "."}} {
		if err := Generate(out, nodes, time.Hour, false); err == nil {
			t.Errorf("nodes %q accepted", nodes)
		}
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("written: %v", ents)
	}
	if err := Generate(out, []string{"nva-a", "nva_b.1"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
}
