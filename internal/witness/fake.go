package witness

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// Fake is an in-memory witness for tests, expiring leases on an injected
// clock. Several Keepers may share one Fake to play several nodes. Faults
// can be injected: SetError makes every call fail (witness unreachable),
// Hang makes every call block until its context ends (a request lost in
// the network).
type Fake struct {
	clock clock.Clock

	mu      sync.Mutex
	holder  string
	token   uint64 // last token granted
	lease   uint64 // current lease's handle, so a released-and-regranted lease is told apart
	expires time.Time
	err     error
	hang    bool
	cut     map[string]bool
	calls   map[string]int
}

// NewFake returns a free Fake witness on clock c.
func NewFake(c clock.Clock) *Fake {
	return &Fake{clock: c, calls: map[string]int{}, cut: map[string]bool{}}
}

// SetError makes every following call fail with err (nil clears it).
func (f *Fake) SetError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Hang makes every following call block until its context is done (false
// clears it). Calls already blocked stay blocked until their context ends.
func (f *Fake) Hang(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = on
}

// Isolate cuts holder off from the witness (or reconnects it): its calls
// block until their context is done, as if the network dropped them.
func (f *Fake) Isolate(holder string, cut bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut[holder] = cut
}

// Calls reports how many times op ("acquire", "renew", "release",
// "holder") was called, failed calls included.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Expire ends the current lease now, as if its time had run out.
func (f *Fake) Expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expires = f.clock.Now()
}

// enter counts a call and applies the injected faults. It returns with
// f.mu held when the call may proceed.
func (f *Fake) enter(ctx context.Context, op, holder string) error {
	f.mu.Lock()
	f.calls[op]++
	if f.hang || f.cut[holder] {
		f.mu.Unlock()
		<-ctx.Done()
		return fmt.Errorf("fake witness %s: %w", op, ctx.Err())
	}
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return fmt.Errorf("fake witness %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("fake witness %s: %w", op, err)
	}
	return nil
}

// live reports whether a lease is held; f.mu must be held.
func (f *Fake) live() bool {
	return f.holder != "" && f.clock.Now().Before(f.expires)
}

func (f *Fake) Acquire(ctx context.Context, holder string, ttl time.Duration) (Grant, error) {
	if holder == "" || ttl <= 0 {
		return Grant{}, fmt.Errorf("fake witness acquire: holder %q ttl %v: invalid", holder, ttl)
	}
	if err := f.enter(ctx, "acquire", holder); err != nil {
		return Grant{}, err
	}
	defer f.mu.Unlock()
	now := f.clock.Now()
	if f.live() && f.holder != holder {
		return Grant{}, fmt.Errorf("fake witness acquire for %s: %w", holder, heldBy(f.holder, f.token))
	}
	if !f.live() || f.holder != holder {
		f.token++
		f.lease++
		f.holder = holder
	}
	f.expires = now.Add(ttl)
	return Grant{Holder: holder, Token: f.token, TTL: ttl, Acquired: now, Renewed: now,
		handle: strconv.FormatUint(f.lease, 10)}, nil
}

func (f *Fake) Renew(ctx context.Context, g Grant) (Grant, error) {
	if err := f.enter(ctx, "renew", g.Holder); err != nil {
		return g, err
	}
	defer f.mu.Unlock()
	if !f.owns(g) {
		return g, lost("fake witness renew for %s token %d", g.Holder, g.Token)
	}
	now := f.clock.Now()
	f.expires = now.Add(g.TTL)
	g.Renewed = now
	return g, nil
}

// owns reports whether g is the current lease. Like Azure and etcd, an
// expired lease nobody else took may still be renewed.
func (f *Fake) owns(g Grant) bool {
	return f.holder == g.Holder && f.token == g.Token && strconv.FormatUint(f.lease, 10) == g.handle
}

func (f *Fake) Release(ctx context.Context, g Grant) error {
	if err := f.enter(ctx, "release", g.Holder); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if f.owns(g) {
		f.holder = ""
		f.expires = time.Time{}
	}
	return nil
}

func (f *Fake) Holder(ctx context.Context) (string, uint64, error) {
	if err := f.enter(ctx, "holder", ""); err != nil {
		return "", 0, err
	}
	defer f.mu.Unlock()
	if !f.live() {
		return "", 0, nil
	}
	return f.holder, f.token, nil
}
