// Package retry holds baton's one retry policy: capped exponential waits on
// an injected clock, with full jitter and the service's Retry-After for
// cloud calls (Backoff.Do), and a plain doubling wait for redial loops
// (Doubling).
package retry

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// Classifier tells whether an error is worth another attempt and how long
// the service asked to wait (0 when it did not say).
type Classifier func(error) (retry bool, after time.Duration)

// FullJitter picks a wait uniformly in [0, ceiling].
func FullJitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// Backoff retries calls with full-jitter exponential backoff on an injected
// clock, honouring the service's Retry-After. The zero value of a field
// means its default.
type Backoff struct {
	Clock          clock.Clock   // default clock.Real
	Base           time.Duration // first wait ceiling, default 250ms; negative means no wait
	Max            time.Duration // wait ceiling, default 8s
	MaxRetryAfter  time.Duration // cap on a service's Retry-After, default 60s
	Attempts       int           // attempts per call, default 6
	AttemptTimeout time.Duration // deadline of one attempt, default 30s
	// Jitter picks the wait in [0, ceiling]; default FullJitter.
	Jitter func(ceiling time.Duration) time.Duration
	Logger *slog.Logger
	// Component names the caller in the retry log line (default "retry").
	Component string
}

// WithDefaults returns b with every zero field set to its default.
func (b Backoff) WithDefaults() Backoff {
	if b.Clock == nil {
		b.Clock = clock.Real{}
	}
	if b.Base == 0 {
		b.Base = 250 * time.Millisecond
	}
	if b.Max == 0 {
		b.Max = 8 * time.Second
	}
	if b.MaxRetryAfter == 0 {
		b.MaxRetryAfter = time.Minute
	}
	if b.Attempts <= 0 {
		b.Attempts = 6
	}
	if b.AttemptTimeout <= 0 {
		b.AttemptTimeout = 30 * time.Second
	}
	if b.Jitter == nil {
		b.Jitter = FullJitter
	}
	if b.Logger == nil {
		b.Logger = slog.New(slog.DiscardHandler)
	}
	if b.Component == "" {
		b.Component = "retry"
	}
	return b
}

// Wait returns how long to wait before attempt n+1 (n counts from 0), given
// the service's Retry-After (0 when it gave none). Call it on a value with
// defaults filled in.
func (b Backoff) Wait(n int, after time.Duration) time.Duration {
	var d time.Duration
	if b.Base > 0 {
		ceiling := b.Base << min(n, 20)
		if ceiling > b.Max || ceiling <= 0 {
			ceiling = b.Max
		}
		d = b.Jitter(ceiling)
	}
	if after > b.MaxRetryAfter {
		after = b.MaxRetryAfter
	}
	return max(d, after)
}

// Do runs fn until it succeeds, fails with an error classify calls final,
// ctx ends, or the attempts are spent. It returns the number of attempts.
func (b Backoff) Do(ctx context.Context, what string, classify Classifier, fn func(ctx context.Context) error) (int, error) {
	b = b.WithDefaults()
	var err error
	for n := 0; n < b.Attempts; n++ {
		actx, cancel := context.WithTimeout(ctx, b.AttemptTimeout)
		err = fn(actx)
		cancel()
		if err == nil {
			return n + 1, nil
		}
		if ctx.Err() != nil {
			return n + 1, fmt.Errorf("%s: %w", what, err)
		}
		retry, after := classify(err)
		if !retry {
			return n + 1, fmt.Errorf("%s: %w", what, err)
		}
		if n == b.Attempts-1 {
			break
		}
		d := b.Wait(n, after)
		b.Logger.Warn("call failed, retrying", "component", b.Component, "call", what, "attempt", n+1, "wait", d, "reason", err.Error())
		if d > 0 {
			if serr := clock.Sleep(ctx, b.Clock, d); serr != nil {
				return n + 1, fmt.Errorf("%s: waiting to retry: %w (last error: %w)", what, serr, err)
			}
		}
	}
	return b.Attempts, fmt.Errorf("%s: giving up after %d attempts: %w", what, b.Attempts, err)
}

// Doubling is the wait of a redial or poll loop: First, then twice the
// previous wait, never above Max. It has no jitter: the loops that use it
// talk to one peer, not to a shared service. The zero value waits 0.
type Doubling struct {
	First, Max time.Duration
	next       time.Duration
}

// Next returns the wait to use now and doubles the one after it.
func (d *Doubling) Next() time.Duration {
	if d.next == 0 {
		d.next = d.First
	}
	w := min(d.next, d.Max)
	d.next = min(2*w, d.Max)
	return w
}

// Peek returns the wait Next would return, without consuming it.
func (d *Doubling) Peek() time.Duration {
	if d.next == 0 {
		return min(d.First, d.Max)
	}
	return min(d.next, d.Max)
}

// Reset starts the sequence again at First.
func (d *Doubling) Reset() { d.next = 0 }
