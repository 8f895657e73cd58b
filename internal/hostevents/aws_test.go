package hostevents_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/hostevents"
	"github.com/batonha/baton/internal/hostevents/hosteventstest"
	"github.com/batonha/baton/internal/role"
)

// A spot interruption notice from AWS's own metadata mock (IMDSv2 only):
// the active hands over and enters MAINTENANCE; the session token is
// fetched once and reused until it nears its expiry.
func TestAWSSpotInterruptionDrains(t *testing.T) {
	url := hosteventstest.StartAEMM(t, "spot", "-a", "terminate")
	clk := clock.NewFake(time.Now())
	w, n := newWatcher(t, setup{cloud: "aws", endpoint: url, clk: clk}, healthyPair())
	ctx := context.Background()
	w.Poll(ctx)
	if c := n.Calls(); !slices.Equal(c, []string{"switchover", "maintenance on"}) {
		t.Fatalf("calls %v (status %+v)", c, status(w))
	}
	st := status(w)
	kinds := map[string]bool{}
	for _, e := range st.Events {
		kinds[e.Kind] = true
		if !e.Drained || e.Acknowledged {
			t.Errorf("event %+v: want drained, not acknowledged (EC2 has no early start)", e)
		}
	}
	if !kinds[hostevents.KindSpot] || !kinds[hostevents.KindRebalance] {
		t.Fatalf("events %+v, want the spot notice and the rebalance recommendation", st.Events)
	}
	w.Poll(ctx)
	if len(n.Calls()) != 2 {
		t.Fatalf("drained twice: %v", n.Calls())
	}
}

func TestAWSTokenCachedUntilExpiry(t *testing.T) {
	url := hosteventstest.StartAEMM(t, "spot")
	clk := clock.NewFake(time.Now())
	src := hostevents.NewAWS(url, http.DefaultClient, clk)
	ctx := context.Background()
	for range 3 {
		if _, err := src.Events(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := src.TokensFetched(); got != 1 {
		t.Fatalf("%d tokens for 3 polls, want 1", got)
	}
	clk.Advance(6 * time.Hour)
	if _, err := src.Events(ctx); err != nil {
		t.Fatal(err)
	}
	if got := src.TokensFetched(); got != 2 {
		t.Fatalf("%d tokens after the first expired, want 2", got)
	}
}

// A scheduled system reboot from the mock's events scenario drains; the
// standby's own event puts it in MAINTENANCE; a completed event is
// nothing to do.
func TestAWSScheduledMaintenance(t *testing.T) {
	url := hosteventstest.StartAEMM(t, "events", "--code", "system-reboot", "--state", "active")
	w, n := newWatcher(t, setup{cloud: "aws", endpoint: url}, healthyPair())
	w.Poll(context.Background())
	st := status(w)
	if c := n.Calls(); !slices.Equal(c, []string{"switchover", "maintenance on"}) || len(st.Events) != 1 || st.Events[0].Kind != "system-reboot" {
		t.Fatalf("calls %v status %+v", c, st)
	}

	done := hosteventstest.StartAEMM(t, "events", "--code", "instance-stop", "--state", "completed")
	w, n = newWatcher(t, setup{cloud: "aws", endpoint: done}, role.Snapshot{State: role.Standby})
	w.Poll(context.Background())
	if st := status(w); len(n.Calls()) != 0 || len(st.Events) != 0 || st.LastError != "" {
		t.Fatalf("a completed event: calls %v status %+v", n.Calls(), st)
	}
}

// Without a token the mock (IMDSv2 only) refuses: the source never
// falls back to IMDSv1.
func TestAWSRequiresToken(t *testing.T) {
	url := hosteventstest.StartAEMM(t, "spot")
	resp, err := http.Get(url + "/latest/meta-data/spot/instance-action")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("IMDSv1 request: %s, want 401 (the mock runs IMDSv2-only)", resp.Status)
	}
}

// The mock moves the notice's time on every read (request time + 2 min):
// the same notice must not count as a new event each poll.
func TestAWSSpotNoticeIsOneEvent(t *testing.T) {
	url := hosteventstest.StartAEMM(t, "spot")
	w, n := newWatcher(t, setup{cloud: "aws", endpoint: url, resume: true}, healthyPair())
	w.Poll(context.Background())
	time.Sleep(1100 * time.Millisecond) // the mock's clock, not ours: its times have one-second resolution
	w.Poll(context.Background())
	if c := n.Calls(); !slices.Equal(c, []string{"switchover", "maintenance on"}) {
		t.Fatalf("calls %v: the moving notice time made new events (or ended old ones)", c)
	}
}
