// Package labtest holds test helpers for code that needs the lab: they skip
// tests that need root when run unprivileged, except in CI where a skipped
// end-to-end test would hide a broken build.
package labtest

import (
	"os"
	"testing"
)

// RequireRoot skips t unless the process runs as root. When the environment
// variable CI is "true" it fails t instead of skipping.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("test needs root (network namespaces) and CI=true: refusing to skip")
	}
	t.Skip("test needs root (network namespaces)")
}
