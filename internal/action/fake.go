package action

import (
	"context"
	"fmt"
	"sync"
)

// Fake is an Action that records its calls and can be told to fail.
type Fake struct {
	ActionName string

	mu     sync.Mutex
	calls  []string
	fail   map[string]int // op -> remaining failures
	active bool
	block  chan struct{}
	parts  []Part
}

// NewFake returns a recording action named name.
func NewFake(name string) *Fake { return &Fake{ActionName: name, fail: map[string]int{}} }

func (f *Fake) Name() string { return f.ActionName }

// FailNext makes the next n calls of op ("activate", "deactivate",
// "verify") fail.
func (f *Fake) FailNext(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = n
}

// ReportParts makes every later call report parts (ReportPart), as an
// action over several route tables or addresses does.
func (f *Fake) ReportParts(parts ...Part) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parts = parts
}

// Block makes calls wait until the returned function is called or their
// context ends.
func (f *Fake) Block() (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block = make(chan struct{})
	ch := f.block
	return func() { close(ch) }
}

func (f *Fake) do(ctx context.Context, op string, t Takeover) error {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s term=%d", f.ActionName, op, t.Term))
	block := f.block
	for _, p := range f.parts {
		ReportPart(ctx, p)
	}
	n := f.fail[op]
	if n > 0 {
		f.fail[op] = n - 1
	}
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if n > 0 {
		return fmt.Errorf("%s %s: injected failure", f.ActionName, op)
	}
	f.mu.Lock()
	switch op {
	case "activate":
		f.active = true
	case "deactivate":
		f.active = false
	}
	f.mu.Unlock()
	return nil
}

func (f *Fake) Activate(ctx context.Context, t Takeover) error   { return f.do(ctx, "activate", t) }
func (f *Fake) Deactivate(ctx context.Context, t Takeover) error { return f.do(ctx, "deactivate", t) }
func (f *Fake) Verify(ctx context.Context, active bool) error {
	return f.do(ctx, "verify", Takeover{})
}

// Calls returns the recorded calls.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Active reports whether the last successful call left the action active.
func (f *Fake) Active() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}
