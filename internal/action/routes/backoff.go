package routes

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

// Backoff retries cloud calls with full-jitter exponential backoff on an
// injected clock, honouring the service's Retry-After. The zero value of a
// field means its default.
type Backoff struct {
	Clock          clock.Clock   // default clock.Real
	Base           time.Duration // first wait ceiling, default 250ms; negative means no wait
	Max            time.Duration // wait ceiling, default 8s
	MaxRetryAfter  time.Duration // cap on a service's Retry-After, default 60s
	Attempts       int           // attempts per call, default 6
	AttemptTimeout time.Duration // deadline of one attempt, default 30s
	// Jitter picks the wait in [0, ceiling]; default uniform random.
	Jitter func(ceiling time.Duration) time.Duration
	Logger *slog.Logger
}

func (b Backoff) withDefaults() Backoff {
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
		b.Jitter = func(c time.Duration) time.Duration {
			if c <= 0 {
				return 0
			}
			return rand.N(c + 1)
		}
	}
	if b.Logger == nil {
		b.Logger = slog.New(slog.DiscardHandler)
	}
	return b
}

// wait returns how long to sleep before attempt n+1 (n counts from 0).
func (b Backoff) wait(n int, after time.Duration) time.Duration {
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
	b = b.withDefaults()
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
		d := b.wait(n, after)
		b.Logger.Warn("cloud call failed, retrying", "component", "routes", "call", what, "attempt", n+1, "wait", d, "reason", err.Error())
		if d > 0 {
			t := b.Clock.NewTimer(d)
			select {
			case <-t.C():
			case <-ctx.Done():
				t.Stop()
				return n + 1, fmt.Errorf("%s: waiting to retry: %w (last error: %w)", what, ctx.Err(), err)
			}
		}
	}
	return b.Attempts, fmt.Errorf("%s: giving up after %d attempts: %w", what, b.Attempts, err)
}
