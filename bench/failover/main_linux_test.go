package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/batonha/baton/internal/lab/labtest"
)

// lineRE is the result line format the Makefile and the issue expect.
var lineRE = regexp.MustCompile(`(?m)^failover interval=100ms variant=kill baton_p50_ms=(\S+) baton_p95_ms=(\S+) keepalived_p50_ms=(\S+) keepalived_p95_ms=(\S+) ratio_p50=(\S+)$`)

func benchOnce(t *testing.T, o options) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, progress bytes.Buffer
	if err := run(ctx, o, &out, &progress); err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	t.Log("\n" + progress.String() + out.String())
	return out.String()
}

// TestBenchWithFakeBaton drives the baton half against the lab's stand-in
// daemon, whose detection time is misses x interval: the measured takeover
// must be in that neighbourhood.
func TestBenchWithFakeBaton(t *testing.T) {
	labtest.RequireRoot(t)
	bin := filepath.Join(t.TempDir(), "fakebaton")
	if out, err := exec.Command("go", "build", "-o", bin, "../../internal/lab/fakebaton").CombinedOutput(); err != nil {
		t.Fatalf("building fakebaton: %v\n%s", err, out)
	}
	out := benchOnce(t, options{n: 2, intervals: []time.Duration{100 * time.Millisecond}, variants: []pairbench.Variant{pairbench.Kill},
		only: "baton", batonBin: bin, misses: 3, seed: 1, scenarios: map[string]bool{"failover": true}})
	m := lineRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no failover line in\n%s", out)
	}
	p50, err := strconv.ParseFloat(m[1], 64)
	if err != nil || p50 < 200 || p50 > 2000 {
		t.Errorf("baton_p50_ms = %s, want 200..2000 for 3 x 100ms detection", m[1])
	}
	if m[3] != "NaN" || m[5] != "NaN" {
		t.Errorf("keepalived columns = %s %s, want NaN when not measured", m[3], m[5])
	}
	if !regexp.MustCompile(`(?m)^role-change interval=100ms variant=kill baton_p50_ms=[0-9.]+ `).MatchString(out) {
		t.Error("no role-change line")
	}
}

func TestBenchKeepalived(t *testing.T) {
	labtest.RequireRoot(t)
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived not installed")
	}
	out := benchOnce(t, options{n: 2, intervals: []time.Duration{100 * time.Millisecond}, variants: []pairbench.Variant{pairbench.Kill},
		only: "keepalived", keepalived: bin, misses: 3, seed: 1, footprint: time.Second,
		scenarios: map[string]bool{"failover": true, "footprint": true}})
	m := lineRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no failover line in\n%s", out)
	}
	// VRRPv3 at 0.1 s: master down after 3 x 0.1 s + skew; allow for load.
	p50, err := strconv.ParseFloat(m[3], 64)
	if err != nil || p50 < 150 || p50 > 2000 {
		t.Errorf("keepalived_p50_ms = %s, want 150..2000", m[3])
	}
	if !regexp.MustCompile(`(?m)^footprint interval=100ms baton_cpu_pct=NaN baton_pss_mb=NaN keepalived_cpu_pct=[0-9.]+ keepalived_pss_mb=[0-9.]+ cpu_ratio=NaN$`).MatchString(out) {
		t.Error("no footprint line")
	}
}
