package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab/labtest"
)

// buildFakeBaton compiles the stand-in daemon for the demo test.
func buildFakeBaton(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fakebaton")
	out, err := exec.Command("go", "build", "-o", bin, "./fakebaton").CombinedOutput()
	if err != nil {
		t.Fatalf("building fakebaton: %v\n%s", err, out)
	}
	return bin
}

func TestDemoWithFakeDaemon(t *testing.T) {
	labtest.RequireRoot(t)
	bin := buildFakeBaton(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	s := defaultDemoSettings()
	s.settleFor = 200 * time.Millisecond
	if err := runDemo(ctx, bin, &out, nil, s); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Log("\n" + text)
	for _, want := range []string{
		"SIGKILL baton on nva-a",
		"nva-b logs role changed STANDBY -> ACTIVE",
		"load balancer: nva-b probe answers 200",
		"first UDP answer via nva-b",
		"restarting baton on nva-a",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The fake detects a kill after misses x interval = 300 ms, so the
	// takeover can be neither instant nor slower than a few seconds.
	m := regexp.MustCompile(`takeover \(kill -> standby's probe 200\):\s+([0-9.]+) ms`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no takeover line")
	}
	var v float64
	if _, err := fmt.Sscan(m[1], &v); err != nil || v < 200 || v > 3000 {
		t.Errorf("takeover = %s ms, want 200..3000", m[1])
	}
}

// TestDemoWithRealBaton runs the demo against the real daemon when the
// Makefile provides it (E2E_BIN, set by `make test`).
func TestDemoWithRealBaton(t *testing.T) {
	labtest.RequireRoot(t)
	bin := os.Getenv("E2E_BIN")
	if bin == "" {
		t.Skip("E2E_BIN not set (make test sets it to bin/baton)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := runDemo(ctx, bin, &out, nil, defaultDemoSettings()); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"nva-b logs role changed STANDBY -> ACTIVE", "first UDP answer via nva-b", "restarting baton on nva-a"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
