// Package fencerace races a stale fenced writer against a newer one over
// shared cloud route tables, at every step of each: the stale node (it
// held the role under a lower fencing token and resumes after a freeze)
// runs its periodic verify or retries its takeover, paused before its
// k-th cloud call while the newer active takes over, for every k; and the
// newer active's takeover paused at every step while the stale node
// verifies. The newer token must win every time: the stale node refused
// with a fault at the latest by its first write after the newer node's
// takeover returned, the newer one never, and after the newer node's next
// verify every route on it with its token recorded.
//
// The routes tests run it against moto (AWS) and the Azure SDK's fake
// servers; the adversarial suite runs it as one case.
package fencerace

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/routes"
)

// Cloud is the route tables the two writers race on.
type Cloud struct {
	// Name says which cloud, for errors.
	Name string
	// Reset points every route at the stale node and records staleToken,
	// the state before the newer node takes over.
	Reset func(ctx context.Context, staleToken uint64) error
	// Writer builds the routes action of one node ("stale" or "newer")
	// with a fresh state directory; every cloud call it makes first
	// passes g.Wait.
	Writer func(node string, g *Gate) (action.Action, error)
	// Check fails unless every route points at the newer node and the
	// tables record newerToken.
	Check func(ctx context.Context, newerToken uint64) error
}

// Report counts the interleavings run and those the stale node lost.
type Report struct {
	Cases   int
	Refused int // the stale node got a fault and the newer one won
}

// Sweep runs every interleaving; it fails at the first the newer token
// does not win.
func Sweep(ctx context.Context, c Cloud, staleToken, newerToken uint64) (Report, error) {
	var rep Report
	for _, order := range []string{"stale verify paused", "stale takeover paused", "newer takeover paused"} {
		for k := 1; ; k++ {
			reached, err := one(ctx, c, order, k, staleToken, newerToken)
			rep.Cases++
			if err != nil {
				return rep, fmt.Errorf("%s: %s before cloud call %d: %w", c.Name, order, k, err)
			}
			rep.Refused++
			if !reached {
				break
			}
		}
	}
	return rep, nil
}

// one runs one interleaving and reports whether the paused writer reached
// call k (false: it made fewer calls, and the sweep of this order ends).
func one(ctx context.Context, c Cloud, order string, k int, staleToken, newerToken uint64) (bool, error) {
	if err := c.Reset(ctx, staleToken); err != nil {
		return false, fmt.Errorf("resetting the tables: %w", err)
	}
	gs, gn := &Gate{}, &Gate{}
	stale, err := c.Writer("stale", gs)
	if err != nil {
		return false, err
	}
	newer, err := c.Writer("newer", gn)
	if err != nil {
		return false, err
	}
	// The stale node held the role under its token.
	if err := stale.Activate(ctx, action.Takeover{Term: 1, Reason: "stale node's takeover", Token: staleToken}); err != nil {
		return false, fmt.Errorf("the stale node's own takeover: %w", err)
	}
	staleVerify := func(ctx context.Context) error { return stale.Verify(ctx, true) }
	staleRetry := func(ctx context.Context) error {
		return stale.Activate(ctx, action.Takeover{Term: 1, Reason: "stale node retries", Token: staleToken})
	}
	newerTakeover := func(ctx context.Context) error {
		return newer.Activate(ctx, action.Takeover{Term: 2, Reason: "newer node's takeover", Token: newerToken})
	}
	var staleErr, newerErr error
	var reached bool
	switch order {
	case "stale verify paused":
		staleErr, newerErr, reached = interleave(ctx, gs, k, staleVerify, newerTakeover)
	case "stale takeover paused":
		staleErr, newerErr, reached = interleave(ctx, gs, k, staleRetry, newerTakeover)
	default:
		newerErr, staleErr, reached = interleave(ctx, gn, k, newerTakeover, staleVerify)
	}
	if newerErr != nil {
		return reached, fmt.Errorf("the newer node's takeover failed: %w", newerErr)
	}
	refused, err := refusal(staleErr)
	if err != nil {
		return reached, err
	}
	// Once the newer node's takeover has returned, the stale node's next
	// write is refused (a fault demotes it), and the newer node's verify
	// repairs whatever the stale one wrote before.
	if !refused {
		if refused, err = refusal(stale.Verify(ctx, true)); err != nil {
			return reached, err
		}
		if !refused {
			return reached, errors.New("the stale node's verify passed after the newer node's takeover")
		}
	}
	if err := newer.Verify(ctx, true); err != nil {
		return reached, fmt.Errorf("the newer node's verify failed: %w", err)
	}
	if err := c.Check(ctx, newerToken); err != nil {
		return reached, err
	}
	return reached, nil
}

// refusal tells a stale node's fault from success and other failures.
func refusal(err error) (bool, error) {
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, routes.ErrStale) && errors.Is(err, action.ErrFault):
		return true, nil
	}
	return false, fmt.Errorf("the stale node failed otherwise than refused: %w", err)
}

// interleave runs first with its calls through g, paused before call k
// until second has returned; when first makes fewer than k calls, second
// runs after it.
func interleave(ctx context.Context, g *Gate, k int, first, second func(context.Context) error) (errFirst, errSecond error, reached bool) {
	reachedC, release := g.arm(k)
	done := make(chan error, 1)
	go func() { done <- first(ctx) }()
	select {
	case <-reachedC:
		reached = true
		errSecond = second(ctx)
		close(release)
		errFirst = <-done
	case errFirst = <-done:
		errSecond = second(ctx)
	}
	g.disarm()
	return errFirst, errSecond, reached
}

// Gate pauses one writer before its k-th cloud call while armed. The zero
// value lets every call through.
type Gate struct {
	mu      sync.Mutex
	armed   bool
	at      int
	calls   int
	reached chan struct{}
	release chan struct{}
}

func (g *Gate) arm(k int) (reached, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.at, g.calls = true, k, 0
	g.reached, g.release = make(chan struct{}), make(chan struct{})
	return g.reached, g.release
}

func (g *Gate) disarm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = false
}

// Wait is called before every cloud call of the writer: it returns at
// once except for the k-th call of an armed gate, which waits to be
// released.
func (g *Gate) Wait(ctx context.Context) error {
	g.mu.Lock()
	if !g.armed {
		g.mu.Unlock()
		return nil
	}
	g.calls++
	if g.calls != g.at {
		g.mu.Unlock()
		return nil
	}
	reached, release := g.reached, g.release
	g.mu.Unlock()
	close(reached)
	select {
	case <-release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
