package hooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonha/baton/internal/clock"
)

// A hook others may write is refused at start, with its path.
func TestNewRefusesWritableHook(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notify.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Active: []string{p}}, clock.Real{}, nil)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("world-writable hook: %v", err)
	}
}
