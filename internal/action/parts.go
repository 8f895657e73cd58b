package action

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Part is one target of a step that works on several: a route table, an
// address. An action reports its parts with ReportPart while it runs; the
// pipeline keeps them with the step's Result, so that a takeover's
// waterfall shows which table or address took the time, failed or was
// retried.
type Part struct {
	Target   string        `json:"target"` // "rtb-1 (2 routes)", "10.0.0.5/24 on eth0"
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Attempts int           `json:"attempts"` // calls made; more than 1: retried
}

// NewPart builds the part of target from its outcome.
func NewPart(target string, started time.Time, d time.Duration, attempts int, err error) Part {
	p := Part{Target: target, OK: err == nil, Started: started, Duration: d, Attempts: max(attempts, 1)}
	if err != nil {
		p.Error = err.Error()
	}
	return p
}

type partsKey struct{}

// partLog collects the parts reported under one step's context.
type partLog struct {
	mu    sync.Mutex
	parts []Part
}

// withParts returns ctx carrying a fresh part log.
func withParts(ctx context.Context) (context.Context, *partLog) {
	l := &partLog{}
	return context.WithValue(ctx, partsKey{}, l), l
}

// CollectParts returns ctx carrying a fresh part log, and a function that
// lists what was reported under it: what the pipeline does for each step,
// for an action's own tests.
func CollectParts(ctx context.Context) (context.Context, func() []Part) {
	ctx, l := withParts(ctx)
	return ctx, l.list
}

// ReportPart records p for the step running under ctx. Outside a pipeline
// step (a unit test calling Activate directly) it does nothing. It is safe
// from several goroutines.
func ReportPart(ctx context.Context, p Part) {
	l, _ := ctx.Value(partsKey{}).(*partLog)
	if l == nil {
		return
	}
	l.mu.Lock()
	l.parts = append(l.parts, p)
	l.mu.Unlock()
}

// list returns the parts in the order they started (by target when they
// started together).
func (l *partLog) list() []Part {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.parts) == 0 {
		return nil
	}
	out := slices.Clone(l.parts)
	slices.SortStableFunc(out, func(a, b Part) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		switch {
		case a.Target < b.Target:
			return -1
		case a.Target > b.Target:
			return 1
		}
		return 0
	})
	return out
}
