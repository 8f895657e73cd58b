package witness

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Timing used by most keeper tests: renew every 3s, Lost at 7s, leave by 8s.
const (
	kTTL   = 9 * time.Second
	kDrift = time.Second
	kStep  = time.Second
	kRetry = 500 * time.Millisecond
)

func startKeeper(t *testing.T, node string, w Backend, clk clock.Clock) *Keeper {
	t.Helper()
	k, err := NewKeeper(KeeperConfig{Node: node, TTL: kTTL, DriftMargin: kDrift, StepDown: kStep, Retry: kRetry, Backend: w, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("keeper %s Run: %v", node, err)
		}
	})
	return k
}

func nextEvent(t *testing.T, k *Keeper) Event {
	t.Helper()
	select {
	case e := <-k.Events():
		return e
	case <-time.After(5 * time.Second):
		t.Fatalf("keeper %s: no event within 5s; status %+v", k.cfg.Node, k.Status())
		return nil
	}
}

func noEvent(t *testing.T, k *Keeper) {
	t.Helper()
	select {
	case e := <-k.Events():
		t.Fatalf("keeper %s: unexpected event %#v", k.cfg.Node, e)
	default:
	}
}

// eventually polls cond until it holds or 5s of real time have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func mustAcquired(t *testing.T, k *Keeper) Acquired {
	t.Helper()
	e := nextEvent(t, k)
	a, ok := e.(Acquired)
	if !ok {
		t.Fatalf("keeper %s: got %#v, want Acquired", k.cfg.Node, e)
	}
	return a
}

func mustLost(t *testing.T, k *Keeper) Lost {
	t.Helper()
	e := nextEvent(t, k)
	l, ok := e.(Lost)
	if !ok {
		t.Fatalf("keeper %s: got %#v, want Lost", k.cfg.Node, e)
	}
	return l
}

func TestKeeperRenewsAtOneThird(t *testing.T) {
	clk := clock.NewFake(t0)
	w := NewFake(clk)
	k := startKeeper(t, "a", w, clk)
	k.Want(true)
	a := mustAcquired(t, k)
	if a.Token != 1 || !a.MustLeaveBy.Equal(t0.Add(8*time.Second)) {
		t.Fatalf("Acquired = %+v, want token 1, must leave by t0+8s", a)
	}
	if by, ok := k.MustLeaveBy(); !ok || !by.Equal(a.MustLeaveBy) {
		t.Fatalf("MustLeaveBy = %v %v", by, ok)
	}

	clk.Advance(3*time.Second - time.Millisecond)
	if n := w.Calls("renew"); n != 0 {
		t.Fatalf("renewed %d times before TTL/3", n)
	}
	clk.Advance(time.Millisecond)
	eventually(t, "first renewal", func() bool { return k.Status().Renewals == 1 })
	s := k.Status()
	if !s.Holding || s.Holder != "a" || s.Token != 1 || !s.MustLeaveBy.Equal(t0.Add(11*time.Second)) || s.TimeLeft != 8*time.Second {
		t.Fatalf("status after renewal = %+v", s)
	}
	// Keep renewing across several lease times: never lost.
	for i := 2; i <= 10; i++ {
		clk.Advance(3 * time.Second)
		eventually(t, "renewal", func() bool { return k.Status().Renewals == uint64(i) })
	}
	noEvent(t, k)
	if h, tok, _ := w.Holder(context.Background()); h != "a" || tok != 1 {
		t.Fatalf("witness holder = %s %d", h, tok)
	}
}

func TestKeeperLostBeforeAnyoneCanAcquire(t *testing.T) {
	clk := clock.NewFake(t0)
	w := NewFake(clk)
	k := startKeeper(t, "a", w, clk)
	k.Want(true)
	mustAcquired(t, k)

	unreachable := errors.New("connection refused")
	w.SetError(unreachable)
	clk.Advance(3 * time.Second) // first renew fails
	eventually(t, "renew failure", func() bool { return k.Status().RenewFailures == 1 })
	if s := k.Status(); !strings.Contains(s.LastError, "connection refused") || s.Failures != 1 {
		t.Fatalf("status = %+v", s)
	}
	// Retries every 500ms until just before the deadline: still holding.
	for i := 2; i <= 8; i++ {
		clk.Advance(kRetry)
		eventually(t, "renew retry", func() bool { return k.Status().RenewFailures == uint64(i) })
	}
	if now := clk.Now(); !now.Equal(t0.Add(6500 * time.Millisecond)) {
		t.Fatalf("clock at %v", now.Sub(t0))
	}
	clk.Advance(kRetry - time.Millisecond)
	noEvent(t, k)
	if !k.Status().Holding {
		t.Fatal("gave up before TTL - drift - step-down")
	}
	clk.Advance(time.Millisecond) // t0+7s
	l := mustLost(t, k)
	if l.Token != 1 || l.Reason != "renew deadline passed" {
		t.Fatalf("Lost = %+v", l)
	}
	if _, ok := k.MustLeaveBy(); ok {
		t.Fatal("MustLeaveBy still reports holding")
	}
	// The witness still has the lease for a (it expires at t0+9s), so
	// nobody else could have acquired yet: no overlap.
	w.SetError(nil)
	if _, err := w.Acquire(context.Background(), "b", kTTL); !errors.Is(err, ErrHeld) {
		t.Fatalf("b acquired while a's lease was live: %v", err)
	}
}

func TestKeeperLostDeadlineWithHungRequest(t *testing.T) {
	clk := clock.NewFake(t0)
	w := NewFake(clk)
	k := startKeeper(t, "a", w, clk)
	k.Want(true)
	mustAcquired(t, k)

	w.Hang(true)
	clk.Advance(3 * time.Second)
	eventually(t, "renew sent", func() bool { return w.Calls("renew") == 1 })
	clk.Advance(4*time.Second - time.Millisecond)
	noEvent(t, k)
	if !k.Status().Holding {
		t.Fatal("gave up before the deadline")
	}
	// The witness answers again, but the renew already sent stays lost.
	w.Hang(false)
	clk.Advance(time.Millisecond)
	if l := mustLost(t, k); l.Reason != "renew deadline passed" {
		t.Fatalf("Lost = %+v", l)
	}
	// The lease has not expired at the witness: the keeper gets it back
	// with the same token (nobody else held it).
	eventually(t, "hung renew cancelled and re-acquire sent", func() bool { return w.Calls("acquire") == 2 })
	if a := mustAcquired(t, k); a.Token != 1 {
		t.Fatalf("re-acquired with token %d, want 1", a.Token)
	}
}

// A request lost in an outage is given up after RequestTimeout (on the
// keeper's clock) and the next one goes out Retry later: a witness that is
// back is reached within RequestTimeout + Retry, however long the outage.
func TestKeeperRequestTimeoutBoundsRecovery(t *testing.T) {
	clk := clock.NewFake(t0)
	w := NewFake(clk)
	k := startKeeper(t, "a", w, clk)
	k.Want(true)
	mustAcquired(t, k)

	w.Hang(true)
	clk.Advance(3 * time.Second)
	eventually(t, "renew sent", func() bool { return w.Calls("renew") == 1 })
	clk.Advance(DefaultRequestTimeout)
	eventually(t, "hung renew given up", func() bool { return k.Status().Failures == 1 })
	clk.Advance(kRetry)
	eventually(t, "renew sent again", func() bool { return w.Calls("renew") == 2 })
	if !k.Status().Holding {
		t.Fatal("gave up the lease before its deadline")
	}
	// Long after the deadline, the witness still lost.
	clk.Advance(4 * time.Second)
	if l := mustLost(t, k); l.Reason != "renew deadline passed" {
		t.Fatalf("Lost = %+v", l)
	}
	eventually(t, "acquire sent", func() bool { return w.Calls("acquire") == 2 })
	f := k.Status().Failures
	w.Hang(false)
	clk.Advance(DefaultRequestTimeout)
	eventually(t, "hung acquire given up", func() bool { return k.Status().Failures == f+1 })
	noEvent(t, k)
	clk.Advance(kRetry)
	// Nobody else took the lease meanwhile: the same grant, token 1.
	if a := mustAcquired(t, k); a.Token != 1 {
		t.Fatalf("re-acquired with token %d, want 1", a.Token)
	}
}

func TestKeeperHeldThenTakeoverAfterRelease(t *testing.T) {
	clk := clock.NewFake(t0)
	w := NewFake(clk)
	a := startKeeper(t, "a", w, clk)
	b := startKeeper(t, "b", w, clk)
	a.Want(true)
	mustAcquired(t, a)
	b.Want(true)
	h, ok := nextEvent(t, b).(Held)
	if !ok || h.Holder != "a" || h.Token != 1 {
		t.Fatalf("b got %#v, want Held by a token 1", h)
	}
	if s := b.Status(); s.Holding || s.Holder != "a" {
		t.Fatalf("b status = %+v", s)
	}
	// Retries do not repeat Held.
	clk.Advance(kRetry)
	eventually(t, "b retried", func() bool { return w.Calls("acquire") == 3 })

	a.Want(false)
	if l := mustLost(t, a); l.Reason != "released" {
		t.Fatalf("a Lost = %+v", l)
	}
	eventually(t, "a released", func() bool { return w.Calls("release") == 1 })
	noEvent(t, b)
	clk.Advance(kRetry)
	if got := mustAcquired(t, b); got.Token != 2 {
		t.Fatalf("b token = %d, want 2", got.Token)
	}
	noEvent(t, a)
}

func TestKeeperTakeoverOnlyAfterExpiry(t *testing.T) {
	clk := clock.NewFake(t0)
	w := NewFake(clk)
	a := startKeeper(t, "a", w, clk)
	a.Want(true)
	mustAcquired(t, a)
	aLeaveBy, _ := a.MustLeaveBy()

	// a is cut off from the witness: its requests get no answer.
	w.Isolate("a", true)
	b := startKeeper(t, "b", w, clk)
	b.Want(true)
	if h := nextEvent(t, b).(Held); h.Holder != "a" {
		t.Fatalf("b: %+v", h)
	}
	var acquiredAt time.Time
	for i := 0; i < 40 && acquiredAt.IsZero(); i++ {
		clk.Advance(kRetry)
		select {
		case e := <-b.Events():
			if _, ok := e.(Acquired); !ok {
				t.Fatalf("b: %#v", e)
			}
			acquiredAt = clk.Now()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if acquiredAt.IsZero() {
		t.Fatal("b never acquired")
	}
	if acquiredAt.Before(t0.Add(kTTL)) || !aLeaveBy.Before(acquiredAt) {
		t.Fatalf("b acquired at t0+%v; a had to leave by t0+%v; lease ran to t0+%v", acquiredAt.Sub(t0), aLeaveBy.Sub(t0), kTTL)
	}
	if l := mustLost(t, a); l.Reason != "renew deadline passed" {
		t.Fatalf("a: %+v", l)
	}
}

func TestKeeperLostAtWitness(t *testing.T) {
	clk := clock.NewFake(t0)
	w := NewFake(clk)
	k := startKeeper(t, "a", w, clk)
	k.Want(true)
	mustAcquired(t, k)
	// An operator breaks the lease and b takes it.
	w.Expire()
	if g, err := w.Acquire(context.Background(), "b", kTTL); err != nil || g.Token != 2 {
		t.Fatalf("b acquire: %+v %v", g, err)
	}
	clk.Advance(3 * time.Second)
	l := mustLost(t, k)
	if !strings.Contains(l.Reason, "lost at witness") || l.Token != 1 {
		t.Fatalf("Lost = %+v", l)
	}
	h, ok := nextEvent(t, k).(Held)
	if !ok || h.Holder != "b" || h.Token != 2 {
		t.Fatalf("after loss: %#v", h)
	}
	if s := k.Status(); s.RenewFailures != 1 || s.Holding {
		t.Fatalf("status = %+v", s)
	}
}

func TestKeeperAcquireFailureRetries(t *testing.T) {
	clk := clock.NewFake(t0)
	w := NewFake(clk)
	w.SetError(errors.New("timeout"))
	k := startKeeper(t, "a", w, clk)
	k.Want(true)
	eventually(t, "failed acquire", func() bool { return k.Status().Failures == 1 })
	w.SetError(nil)
	clk.Advance(kRetry)
	mustAcquired(t, k)
	if s := k.Status(); s.Failures != 0 || s.LastError != "" {
		t.Fatalf("status = %+v", s)
	}
}

func TestNewKeeperChecks(t *testing.T) {
	w := NewFake(clock.Real{})
	for name, cfg := range map[string]KeeperConfig{
		"no node":        {TTL: kTTL, Backend: w},
		"no backend":     {Node: "a", TTL: kTTL},
		"no ttl":         {Node: "a", Backend: w},
		"negative drift": {Node: "a", TTL: kTTL, DriftMargin: -1, Backend: w},
		"margins too big": {Node: "a", TTL: 4 * time.Second, DriftMargin: time.Second, StepDown: 1500 * time.Millisecond,
			Backend: w},
	} {
		if _, err := NewKeeper(cfg); err == nil {
			t.Errorf("%s: NewKeeper accepted %+v", name, cfg)
		}
	}
	k, err := NewKeeper(KeeperConfig{Node: "a", TTL: 10 * time.Second, Backend: w})
	if err != nil {
		t.Fatal(err)
	}
	if k.cfg.StepDown != time.Second || k.cfg.Retry != 100*time.Millisecond || k.cfg.RequestTimeout != DefaultRequestTimeout {
		t.Fatalf("defaults: step-down %v retry %v request timeout %v", k.cfg.StepDown, k.cfg.Retry, k.cfg.RequestTimeout)
	}
}
