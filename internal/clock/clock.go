// Package clock lets code that waits or reads the time take its clock as a
// dependency, so tests can drive time by hand.
package clock

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Clock is the time source used throughout baton.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTimer returns a timer whose channel receives once d has elapsed.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer baton uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time { return time.Now() }

func (Real) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Fake is a manually advanced clock for tests.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d and fires every timer that is due,
// in deadline order. Functions given to AfterFunc run synchronously.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	target := f.now.Add(d)
	f.mu.Unlock()
	for {
		f.mu.Lock()
		var next *fakeTimer
		for _, t := range f.timers {
			if t.active && !t.when.After(target) && (next == nil || t.when.Before(next.when)) {
				next = t
			}
		}
		if next == nil {
			f.now = target
			f.mu.Unlock()
			return
		}
		f.now = next.when
		next.active = false
		fn, ch, when := next.fn, next.ch, next.when
		f.mu.Unlock()
		if fn != nil {
			fn()
		} else {
			select {
			case ch <- when:
			default:
			}
		}
	}
}

// ErrNotDone is returned by Drive when fn did not return in time.
var ErrNotDone = errors.New("clock.Fake.Drive: not done")

// Drive runs fn in its own goroutine and, until it returns, advances the
// clock by step whenever a timer is armed, so that code waiting on the
// clock (backoffs, polls) runs through without real waiting. It gives up
// after limit of real time.
func (f *Fake) Drive(step, limit time.Duration, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-done:
			return err
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %v", ErrNotDone, limit)
		}
		if f.Pending() > 0 {
			f.Advance(step)
		} else {
			runtime.Gosched()
		}
	}
}

// Pending reports how many timers are armed.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.timers {
		if t.active {
			n++
		}
	}
	return n
}

func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	return f.add(d, fn)
}

func (f *Fake) NewTimer(d time.Duration) Timer { return f.add(d, nil) }

func (f *Fake) add(d time.Duration, fn func()) *fakeTimer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clock: f, when: f.now.Add(d), fn: fn, active: true}
	if fn == nil {
		t.ch = make(chan time.Time, 1)
	}
	f.timers = append(f.timers, t)
	return t
}

type fakeTimer struct {
	clock  *Fake
	when   time.Time
	fn     func()
	ch     chan time.Time
	active bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	t.active = true
	t.when = t.clock.now.Add(d)
	return was
}

// Sleep waits for d on c, or until ctx ends; it returns ctx's error then.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}
