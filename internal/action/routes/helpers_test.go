package routes

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/retry"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testOptions uses a fake clock and a deterministic jitter (the ceiling).
func testOptions(t *testing.T, fk *clock.Fake, dir string) Options {
	return Options{
		Logger:   testLogger(t),
		Clock:    fk,
		StateDir: dir,
		Backoff: retry.Backoff{
			Base: 100 * time.Millisecond, Max: time.Second, Attempts: 4,
			Jitter: func(c time.Duration) time.Duration { return c },
		},
	}
}

// drive runs fn while advancing the fake clock whenever something waits on
// it, so backoff waits pass without real sleeping. It fails the test if fn
// has not returned after 20 s of real time.
func drive(t *testing.T, fk *clock.Fake, fn func() error) error {
	t.Helper()
	err := fk.Drive(50*time.Millisecond, 20*time.Second, fn)
	if errors.Is(err, clock.ErrNotDone) {
		t.Fatal(err)
	}
	return err
}

func activate(t *testing.T, fk *clock.Fake, a *Action) error {
	return drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{Term: 1, Reason: "test"}) })
}

func verify(t *testing.T, fk *clock.Fake, a *Action) error {
	return drive(t, fk, func() error { return a.Verify(context.Background(), true) })
}
