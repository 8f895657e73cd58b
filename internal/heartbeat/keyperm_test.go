package heartbeat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A heartbeat key others may write is refused, with its path.
func TestLoadKeysRefusesWritableKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "heartbeat.key")
	if err := os.WriteFile(p, []byte(strings.Repeat("k", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o622); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("group/world-writable key: %v", err)
	}
}
