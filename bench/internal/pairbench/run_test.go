package pairbench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := Tail(path, 2), "      | two\n      | three\n"; got != want {
		t.Errorf("Tail = %q, want %q", got, want)
	}
	if got := Tail(path, 10); strings.Count(got, "      | ") != 3 {
		t.Errorf("Tail of a short file = %q", got)
	}
	if got := Tail(filepath.Join(t.TempDir(), "missing"), 2); got != "" {
		t.Errorf("Tail of a missing file = %q", got)
	}
}

func TestSettle(t *testing.T) {
	// Reports nothing settled twice, then node 1 for good.
	calls := 0
	settled := func() (int, bool, string) {
		calls++
		if calls <= 2 {
			return -1, false, "not yet"
		}
		return 1, true, ""
	}
	got, err := Settle(context.Background(), "d", settled, 0, time.Minute)
	if err != nil || got != 1 || calls != 3 {
		t.Errorf("Settle = %d, %v after %d calls; want 1 after 3", got, err, calls)
	}

	never := func() (int, bool, string) { return -1, false, "no node holds the VIP" }
	_, err = Settle(context.Background(), "keepalived", never, 0, -time.Second)
	if err == nil || !strings.Contains(err.Error(), "keepalived did not settle") || !strings.Contains(err.Error(), "no node holds the VIP") {
		t.Errorf("Settle past its limit: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Settle(ctx, "d", never, 0, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Settle with a cancelled context: %v", err)
	}
}

func TestStartBoth(t *testing.T) {
	var started []int
	start := func(i int) error { started = append(started, i); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := StartBoth(ctx, start); !errors.Is(err, context.Canceled) || len(started) != 1 || started[0] != 0 {
		t.Errorf("cancelled: %v, started %v; want node 0 only", err, started)
	}
	boom := errors.New("boom")
	if err := StartBoth(context.Background(), func(int) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("failing start: %v", err)
	}
}
