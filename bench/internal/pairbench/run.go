package pairbench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// SettledFunc reports the active node when a pair is settled right now;
// when it is not, why says why.
type SettledFunc func() (active int, ok bool, why string)

// Settle polls settled every 20ms until it reports the same active node
// continuously for stable, and returns that node. After limit it gives up
// with the last reason; name labels the daemon in that error.
func Settle(ctx context.Context, name string, settled SettledFunc, stable, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	cur, since, why := -1, time.Time{}, ""
	for {
		a, ok, w := settled()
		if !ok {
			a, why = -1, w
		}
		if a != cur {
			cur, since = a, time.Now()
		}
		if cur >= 0 && time.Since(since) >= stable {
			return cur, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("%s did not settle within %v: %s", name, limit, why)
		}
		if err := clock.Sleep(ctx, clock.Real{}, 20*time.Millisecond); err != nil {
			return -1, err
		}
	}
}

// StartBoth starts node 0, the preferred one, then node 1 100ms later, so
// that the first election is not a race.
func StartBoth(ctx context.Context, start func(node int) error) error {
	if err := start(0); err != nil {
		return err
	}
	if err := clock.Sleep(ctx, clock.Real{}, 100*time.Millisecond); err != nil {
		return err
	}
	return start(1)
}

// Tail returns the last n lines of a file, indented, for error reports;
// "" when the file cannot be read.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var out strings.Builder
	for _, l := range lines {
		out.WriteString("      | " + l + "\n")
	}
	return out.String()
}
