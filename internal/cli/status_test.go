package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/api"
)

func TestStatusShowsTheTimeFromDetection(t *testing.T) {
	now := time.Now()
	st := api.Status{Node: "a", Role: "ACTIVE", Transitions: []api.Transition{
		{At: now, From: "STANDBY", To: "ACTIVE", Reason: "peer_lost", Term: 2, DetectedMs: 301.5, TotalMs: 12,
			Steps: []api.Step{{Action: "vip", Op: "activate", OK: true, Ms: 2, DoneAtMs: 2}}},
	}}
	var b strings.Builder
	printStatus(&b, st, now)
	if !strings.Contains(b.String(), "peer_lost  detected 301.5ms before  [vip activate done at 2.0ms; total 12.0ms]") {
		t.Fatalf("status:\n%s", b.String())
	}
}
