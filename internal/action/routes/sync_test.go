package routes

import (
	"context"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/aws/awstest"
)

func countCalls(calls []string) map[string]int {
	m := map[string]int{}
	for _, c := range calls {
		m[c]++
	}
	return m
}

// A takeover costs one call per route plus batched reads: one read to
// discover the peer's routes (peer_targets) and one to verify.
func TestAWSTakeoverCallsAreRoutesPlusBatchedReads(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	a := newAWS(t, awsCfg(t.TempDir(), nil), f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	if got := countCalls(f.Calls()); got["ReplaceRoute"] != 3 || got["DescribeRouteTables"] != 2 || len(got) != 2 {
		t.Errorf("calls %v, want 3 ReplaceRoute + 2 DescribeRouteTables", got)
	}
}

// Listed and captured routes are changed without reading first, and one
// batched read verifies them; a listed destination missing from a table
// is created in the next round.
func TestAWSListedRoutesChangedBeforeReading(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	cfg := awsCfg(t.TempDir(), func(c *AWS) {
		c.PeerTargets = false
		c.Destinations = []string{"0.0.0.0/0"}
	})
	a := newAWS(t, cfg, f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if calls[0] != "ReplaceRoute" || calls[1] != "ReplaceRoute" || len(calls) != 3 || calls[2] != "DescribeRouteTables" {
		t.Errorf("calls %v, want 2 ReplaceRoute then one DescribeRouteTables", calls)
	}
	for _, s := range a.Status() {
		if s.Err != nil || s.From != "(unread)" {
			t.Errorf("status %+v", s)
		}
	}
	// Deactivate forgets the tables: the next takeover writes blind again.
	f.SetTarget(rtbA, "0.0.0.0/0", peerENI)
	if err := a.Deactivate(context.Background(), action.Takeover{Term: 2}); err != nil {
		t.Fatal(err)
	}
	before := len(f.Calls())
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	if got := countCalls(f.Calls()[before:]); got["ReplaceRoute"] != 2 || got["DescribeRouteTables"] != 1 {
		t.Errorf("second takeover calls %v", got)
	}
	if f.Target(rtbA, "0.0.0.0/0") != localENI {
		t.Fatal("route not taken back")
	}
	// Created when missing, in a second round.
	g := awstest.New()
	g.AddTable(rtbA, "vpc-00000001", nil, map[string]string{"10.0.0.0/16": "local"})
	cfg.AWS.TableIDs = []string{rtbA}
	cfg.AWS.CreateMissing = true
	cfg.StateDir = t.TempDir()
	b := newAWS(t, cfg, g, fk)
	if err := activate(t, fk, b); err != nil {
		t.Fatal(err)
	}
	if g.Target(rtbA, "0.0.0.0/0") != localENI {
		t.Fatal("missing listed route not created")
	}
}

// Without a read before the change, a second Activate still verifies: a
// route that drifted since the last read is repaired.
func TestAWSActivateVerifiesStaleView(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	cfg := awsCfg(t.TempDir(), func(c *AWS) { c.PeerTargets = false; c.Destinations = []string{"0.0.0.0/0"} })
	a := newAWS(t, cfg, f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	f.SetTarget(rtbB, "0.0.0.0/0", otherENI)
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	if f.Target(rtbB, "0.0.0.0/0") != localENI {
		t.Fatal("stale view hid a drifted route")
	}
}

func TestLimiterHalvesOnThrottleAndGrowsBack(t *testing.T) {
	l := newLimiter(8)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 8 {
		if err := l.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	if err := l.acquire(short); err == nil {
		t.Fatal("a 9th call got a slot of 8")
	}
	l.release(true) // throttled: 8 → 4, 7 in flight
	if l.limit != 4 {
		t.Fatalf("limit %v after a throttle, want 4", l.limit)
	}
	for range 7 {
		l.release(false)
	}
	if l.limit <= 4 || l.limit > 8 {
		t.Errorf("limit %v after successes, want grown above 4", l.limit)
	}
	for range 100 {
		if err := l.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		l.release(false)
	}
	if l.limit != 8 {
		t.Errorf("limit %v, want back at the maximum 8", l.limit)
	}
}
