package retry

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
)

func TestBackoffWait(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second, MaxRetryAfter: 30 * time.Second, Jitter: func(c time.Duration) time.Duration { return c }}.WithDefaults()
	for n, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second} {
		if got := b.Wait(n, 0); got != want {
			t.Errorf("Wait(%d) = %s, want %s", n, got, want)
		}
	}
	if got := b.Wait(0, 5*time.Second); got != 5*time.Second {
		t.Errorf("Retry-After ignored: %s", got)
	}
	if got := b.Wait(0, time.Hour); got != 30*time.Second {
		t.Errorf("Retry-After not capped: %s", got)
	}
	if got := b.Wait(80, 0); got != time.Second {
		t.Errorf("Wait(80) = %s: the shift overflowed past the cap", got)
	}
	b.Base = -1
	if got := b.Wait(3, 0); got != 0 {
		t.Errorf("no-wait backoff waited %s", got)
	}
}

func TestFullJitterStaysInRange(t *testing.T) {
	for range 1000 {
		if d := FullJitter(10 * time.Millisecond); d < 0 || d > 10*time.Millisecond {
			t.Fatalf("FullJitter(10ms) = %s", d)
		}
	}
	if d := FullJitter(0); d != 0 {
		t.Fatalf("FullJitter(0) = %s", d)
	}
}

var errBusy = errors.New("busy")

func classify(err error) (bool, time.Duration) { return errors.Is(err, errBusy), 0 }

// doOnFakeClock runs b.Do on a fake clock driven through every wait and
// returns attempts, the fake time that passed and the error.
func doOnFakeClock(t *testing.T, b Backoff, fn func(context.Context) error) (int, time.Duration, error) {
	t.Helper()
	fk := clock.NewFake(time.Unix(0, 0))
	b.Clock = fk
	var n int
	var err error
	if derr := fk.Drive(50*time.Millisecond, 10*time.Second, func() error {
		n, err = b.Do(context.Background(), "calling", classify, fn)
		return nil
	}); derr != nil {
		t.Fatal(derr)
	}
	return n, fk.Now().Sub(time.Unix(0, 0)), err
}

func TestDoRetriesUntilSuccess(t *testing.T) {
	calls := 0
	n, el, err := doOnFakeClock(t, Backoff{Base: 100 * time.Millisecond, Jitter: func(c time.Duration) time.Duration { return c }}, func(context.Context) error {
		calls++
		if calls < 3 {
			return errBusy
		}
		return nil
	})
	if err != nil || n != 3 || calls != 3 {
		t.Fatalf("Do = %d, %v after %d calls; want 3, nil", n, err, calls)
	}
	if el < 300*time.Millisecond {
		t.Errorf("fake clock advanced %s, want at least the 100ms+200ms waits", el)
	}
}

func TestDoStopsOnFinalError(t *testing.T) {
	final := errors.New("forbidden")
	calls := 0
	n, err := Backoff{Base: -1}.Do(context.Background(), "writing route", classify, func(context.Context) error {
		calls++
		return final
	})
	if n != 1 || calls != 1 || !errors.Is(err, final) {
		t.Fatalf("Do = %d, %v after %d calls; want one attempt and the final error", n, err, calls)
	}
	if got := err.Error(); got != "writing route: forbidden" {
		t.Errorf("error %q does not say what was being done", got)
	}
}

func TestDoGivesUp(t *testing.T) {
	calls := 0
	n, err := Backoff{Base: -1, Attempts: 4}.Do(context.Background(), "reading table", classify, func(context.Context) error {
		calls++
		return errBusy
	})
	if n != 4 || calls != 4 || !errors.Is(err, errBusy) {
		t.Fatalf("Do = %d, %v after %d calls; want 4 attempts", n, err, calls)
	}
}

func TestDoHonoursCancelDuringWait(t *testing.T) {
	fk := clock.NewFake(time.Unix(0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Backoff{Clock: fk, Base: time.Hour, Max: time.Hour}.Do(ctx, "calling", classify, func(context.Context) error { return errBusy })
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for fk.Pending() == 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errBusy) {
			t.Fatalf("Do after cancel = %v; want both the cancellation and the last error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do did not return after cancel")
	}
}

func TestDoubling(t *testing.T) {
	d := Doubling{First: 5 * time.Millisecond, Max: 30 * time.Millisecond}
	if p := d.Peek(); p != 5*time.Millisecond {
		t.Errorf("Peek before Next = %s", p)
	}
	var got []time.Duration
	for range 5 {
		got = append(got, d.Next())
	}
	want := []time.Duration{5, 10, 20, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("sequence %v, want %v ms", got, want)
		}
	}
	d.Reset()
	if n := d.Next(); n != 5*time.Millisecond {
		t.Errorf("after Reset Next = %s", n)
	}
	var zero Doubling
	if n := zero.Next(); n != 0 {
		t.Errorf("zero Doubling waited %s", n)
	}
}
