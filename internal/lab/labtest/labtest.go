// Package labtest is the one place that decides whether a test may skip for
// a missing prerequisite (root, a tool on PATH, a kernel feature). Outside
// CI it skips; when the environment variable CI is "true" it fails the test
// instead, because a skipped test there would hide a broken install step.
package labtest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Require skips t (or fails it when CI=true) with why, unless why is empty.
func Require(t testing.TB, why string) {
	t.Helper()
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a missing prerequisite fails the test)", why)
	}
	t.Skip(why)
}

// RequireRoot requires that the process runs as root (network namespaces).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Require(t, "test needs root (network namespaces)")
	}
}

// RequireTool requires name on PATH and returns its path. scripts/deps.sh
// installs every tool a test asks for.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Require(t, fmt.Sprintf("test needs %s on PATH (scripts/deps.sh test installs it)", name))
	}
	return p
}
