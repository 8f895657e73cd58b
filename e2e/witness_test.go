package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/e2e/partition"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
)

// witnessEnv is the pair with a witness server in its own namespace.
type witnessEnv struct {
	t      *testing.T
	c      *partition.Cluster
	prober *partition.Prober
	ttl    time.Duration
}

func newWitnessEnv(t *testing.T, typ string) *witnessEnv {
	t.Helper()
	labtest.RequireRoot(t)
	bin := batonBin(t)
	ctx := context.Background()
	c, err := partition.NewCluster(ctx, partition.ClusterOptions{Bin: bin, Dir: t.TempDir(), Witness: typ})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range 2 {
				t.Logf("--- %s log (tail) ---\n%s", lab.ApplianceName(i), c.LogTail(i, 60))
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("tearing down lab: %v", err)
		}
	})
	for i := range 2 {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	pctx, cancel := context.WithCancel(ctx)
	p := partition.NewProber(c, 10*time.Millisecond)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(pctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &witnessEnv{t: t, c: c, prober: p, ttl: c.Opts.TTL}
}

func (w *witnessEnv) eventually(what string, limit time.Duration, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx := context.Background()
	w.t.Fatalf("timed out after %v waiting for %s (roles %s/%s)", limit, what, w.c.Role(ctx, 0), w.c.Role(ctx, 1))
}

// holding reports whether node i is ACTIVE and holds the lease.
func (w *witnessEnv) holding(i int) bool {
	st, err := w.c.Status(context.Background(), i)
	return err == nil && st.Role == "ACTIVE" && st.Witness != nil && st.Witness.Holding && st.Witness.Token > 0
}

func (w *witnessEnv) roles(want0, want1 string) bool {
	ctx := context.Background()
	return w.c.Role(ctx, 0) == want0 && w.c.Role(ctx, 1) == want1
}

// noDualActive fails the test if the prober ever saw both probes answer 200.
func (w *witnessEnv) noDualActive() {
	w.t.Helper()
	for _, s := range w.prober.Samples() {
		if s.Code[0] == 200 && s.Code[1] == 200 {
			w.t.Fatalf("both probes answered 200 at %s", s.At.Format("15:04:05.000"))
		}
	}
}

// lastChange returns node i's last role change to `to` (with reason, if
// not empty) after since.
func (w *witnessEnv) lastChange(i int, to, reason string, since time.Time) (lab.RoleChange, bool) {
	w.t.Helper()
	rcs, err := w.c.RoleChanges(i)
	if err != nil {
		w.t.Fatal(err)
	}
	var out lab.RoleChange
	found := false
	for _, rc := range rcs {
		if rc.To == to && (reason == "" || rc.Reason == reason) && rc.Time.After(since) {
			out, found = rc, true
		}
	}
	return out, found
}

func TestWitnessEtcd(t *testing.T)      { testWitness(t, partition.WitnessEtcd) }
func TestWitnessDynamoDB(t *testing.T)  { testWitness(t, partition.WitnessDynamoDB) }
func TestWitnessAzureBlob(t *testing.T) { testWitness(t, partition.WitnessAzureBlob) }

func testWitness(t *testing.T, typ string) {
	w := newWitnessEnv(t, typ)
	ctx := context.Background()
	ttl := w.ttl

	// Startup: one ACTIVE, holding the lease; the standby knows the holder.
	w.eventually("nva-a ACTIVE with the lease, nva-b STANDBY", 20*time.Second, func() bool {
		return w.holding(0) && w.c.Role(ctx, 1) == "STANDBY"
	})
	w.eventually("the probe follows", 5*time.Second, func() bool {
		return w.c.Probe(ctx, 0) == 200 && w.c.Probe(ctx, 1) == 503
	})

	// The witness unreachable from both nodes, which hear each other: the
	// active holds the role by the peer's agreement past its lease time,
	// says so, and holds the lease again once the witness answers.
	if err := w.c.SetCuts(ctx, partition.Cuts{Witness: [2]bool{true, true}}); err != nil {
		t.Fatal(err)
	}
	w.eventually("nva-a to hold by peer agreement", ttl+5*time.Second, func() bool {
		st, err := w.c.Status(ctx, 0)
		return err == nil && st.Role == "ACTIVE" && st.Witness != nil && st.Witness.HoldingByPeer && !st.Witness.Holding
	})
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if w.c.Role(ctx, 0) != "ACTIVE" || w.c.Probe(ctx, 0) != 200 || w.c.Probe(ctx, 1) == 200 {
			t.Fatalf("witness down, pair connected: nva-a %s probe %d, nva-b probe %d", w.c.Role(ctx, 0), w.c.Probe(ctx, 0), w.c.Probe(ctx, 1))
		}
		time.Sleep(50 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := w.c.API(0).Switchover(sctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "witness is unreachable") {
		t.Fatalf("switchover while holding by peer agreement: %v, want refused naming the witness", err)
	}
	if err := w.c.SetCuts(ctx, partition.Cuts{}); err != nil {
		t.Fatal(err)
	}
	w.eventually("nva-a to hold the lease again", 5*time.Second, func() bool { return w.holding(0) })
	w.noDualActive()

	// Cut node↔node only: the standby reaches the witness, the active
	// holds the lease: no takeover, however long the cut lasts.
	if err := w.c.SetCuts(ctx, partition.Cuts{Nodes: true}); err != nil {
		t.Fatal(err)
	}
	w.eventually("nva-b to lose its peer and ask the witness", 5*time.Second, func() bool {
		st, err := w.c.Status(ctx, 1)
		return err == nil && !st.Peer.Alive && st.Witness != nil && st.Witness.Waiting && st.Witness.Holder == "nva-a"
	})
	deadline = time.Now().Add(ttl + 2*time.Second)
	for time.Now().Before(deadline) {
		if !w.holding(0) || w.c.Role(ctx, 1) != "STANDBY" {
			t.Fatalf("roles changed while only the nodes were cut: %s/%s", w.c.Role(ctx, 0), w.c.Role(ctx, 1))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := w.c.SetCuts(ctx, partition.Cuts{}); err != nil {
		t.Fatal(err)
	}
	w.eventually("the pair to see each other again", 10*time.Second, func() bool {
		st, err := w.c.Status(ctx, 1)
		return err == nil && st.Peer.Alive && w.holding(0)
	})
	w.noDualActive()

	// Cut the active from everything but the load balancer: it steps
	// down when it cannot renew, and the standby takes over only after
	// the lease expired — the old active's lease_lost comes first.
	cut := time.Now()
	if err := w.c.SetCuts(ctx, partition.Cuts{Nodes: true, Witness: [2]bool{true, false}}); err != nil {
		t.Fatal(err)
	}
	w.eventually("nva-b to take over", ttl+15*time.Second, func() bool { return w.holding(1) })
	lostA, ok := w.lastChange(0, "STANDBY", "lease_lost", cut)
	if !ok {
		t.Fatalf("nva-a never logged leaving ACTIVE with reason lease_lost")
	}
	activeB, ok := w.lastChange(1, "ACTIVE", "", cut)
	if !ok {
		t.Fatalf("nva-b never logged becoming ACTIVE")
	}
	if !lostA.Time.Before(activeB.Time) {
		t.Fatalf("nva-b became ACTIVE at %s, before nva-a stepped down at %s", activeB.Time.Format(time.StampMilli), lostA.Time.Format(time.StampMilli))
	}
	t.Logf("isolated active stepped down %v after the cut; the standby took over %v after that",
		lostA.Time.Sub(cut).Round(time.Millisecond), activeB.Time.Sub(lostA.Time).Round(time.Millisecond))
	if c := w.c.Probe(ctx, 0); c == 200 {
		t.Fatalf("the isolated old active still answers 200")
	}
	if err := w.c.SetCuts(ctx, partition.Cuts{}); err != nil {
		t.Fatal(err)
	}
	w.eventually("nva-a to rejoin as STANDBY", 15*time.Second, func() bool { return w.roles("STANDBY", "ACTIVE") && w.holding(1) })
	w.noDualActive()

	// SIGKILL the active: its lease is not released, so the standby takes
	// over only once it expired at the witness.
	st, err := w.c.Status(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var lastRenew time.Duration // how long before the kill the lease was last renewed, at most
	if st.Witness != nil {
		lastRenew = ttl - time.Duration(st.Witness.TimeLeftMs*float64(time.Millisecond))
	}
	if err := w.c.Kill(1); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	w.eventually("nva-a to take over from the killed node", ttl+15*time.Second, func() bool { return w.holding(0) })
	activeA, ok := w.lastChange(0, "ACTIVE", "", killed)
	if !ok {
		t.Fatal("nva-a never logged becoming ACTIVE")
	}
	took := activeA.Time.Sub(killed)
	// The lease was last renewed at most TTL/3 (+ one retry) before the
	// kill, so it cannot have expired sooner than about 2/3 of the TTL.
	if min := ttl*2/3 - 300*time.Millisecond; took < min {
		t.Fatalf("nva-a took over %v after the kill: before the lease could have expired (>= %v); status said %v since the last renewal",
			took, min, lastRenew)
	}
	t.Logf("takeover %v after SIGKILL (lease %v)", took.Round(time.Millisecond), ttl)
	w.noDualActive()

	// The killed node comes back as STANDBY.
	if err := w.c.Start(1); err != nil {
		t.Fatal(err)
	}
	w.eventually("nva-b back as STANDBY", 15*time.Second, func() bool { return w.roles("ACTIVE", "STANDBY") && w.holding(0) })
	w.noDualActive()
}
