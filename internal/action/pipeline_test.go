package action

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
)

func newTestPipeline(fakes ...*Fake) (*Pipeline, *clock.Fake) {
	clk := clock.NewFake(time.Unix(1000, 0))
	var steps []Step
	for _, f := range fakes {
		steps = append(steps, Step{Action: f, Timeout: time.Second})
	}
	return NewPipeline(steps, time.Second, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), nil), clk
}

func TestPipelineOrder(t *testing.T) {
	a, b := NewFake("a"), NewFake("b")
	p, clk := newTestPipeline(a, b)
	ctx := context.Background()
	p.Set(true, Takeover{Term: 3}, clk.Now())
	p.apply(ctx)
	p.Set(false, Takeover{Term: 3}, clk.Now())
	p.apply(ctx)
	if got, want := append(a.Calls(), b.Calls()...), []string{"a activate term=3", "a deactivate term=3", "b activate term=3", "b deactivate term=3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	runs := p.Runs()
	if len(runs) != 2 || runs[0].Op != "activate" || runs[1].Op != "deactivate" {
		t.Fatalf("runs %+v", runs)
	}
	if runs[1].Steps[0].Action != "b" {
		t.Fatalf("deactivation must run in reverse order: %+v", runs[1].Steps)
	}
	if !p.Settled() {
		t.Fatal("not settled")
	}
}

func TestPipelineFailureDoesNotStopOthersAndIsRetried(t *testing.T) {
	a, b := NewFake("a"), NewFake("b")
	a.FailNext("activate", 1)
	p, clk := newTestPipeline(a, b)
	ctx := context.Background()
	p.Set(true, Takeover{Term: 1}, clk.Now())
	p.apply(ctx)
	if !b.Active() {
		t.Fatal("b must run although a failed")
	}
	if a.Active() {
		t.Fatal("a must have failed")
	}
	res := p.Results()
	if res[0].OK || res[0].Error == "" {
		t.Fatalf("a's failure not reported: %+v", res[0])
	}
	p.reconcile(ctx)
	if !a.Active() {
		t.Fatal("reconcile must retry a's activation")
	}
	if r := p.Results()[0]; !r.OK || r.Attempts != 2 {
		t.Fatalf("after retry: %+v", r)
	}
	p.reconcile(ctx)
	if r := p.Results()[1]; r.Op != "verify" || !r.OK {
		t.Fatalf("healthy step must be verified: %+v", r)
	}
}

func TestPipelineTimeout(t *testing.T) {
	a := NewFake("a")
	release := a.Block()
	defer release()
	clk := clock.NewFake(time.Unix(0, 0))
	p := NewPipeline([]Step{{Action: a, Timeout: time.Millisecond}}, 0, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	p.Set(true, Takeover{Term: 1}, clk.Now())
	p.apply(context.Background())
	if r := p.Results()[0]; r.OK || r.Error == "" {
		t.Fatalf("blocked action must time out: %+v", r)
	}
}

func TestPipelineCoalescesToLatest(t *testing.T) {
	a := NewFake("a")
	p, clk := newTestPipeline(a)
	p.Set(true, Takeover{Term: 1}, clk.Now())
	p.Set(false, Takeover{Term: 1}, clk.Now())
	p.apply(context.Background())
	if calls := a.Calls(); len(calls) != 1 || calls[0] != "a deactivate term=1" {
		t.Fatalf("only the latest wish must be applied: %v", calls)
	}
}

func TestPipelineWaitSettled(t *testing.T) {
	a := NewFake("a")
	p, clk := newTestPipeline(a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	p.Set(true, Takeover{Term: 1}, clk.Now())
	if err := p.WaitSettled(ctx); err != nil {
		t.Fatal(err)
	}
	if !a.Active() || !p.Settled() {
		t.Fatal("WaitSettled returned before the wish was applied")
	}
	release := a.Block()
	p.Set(false, Takeover{Term: 1}, clk.Now())
	short, stop := context.WithCancel(ctx)
	stop()
	if err := p.WaitSettled(short); err == nil {
		t.Fatal("WaitSettled must wait for a blocked deactivation")
	}
	release()
	if err := p.WaitSettled(ctx); err != nil || a.Active() {
		t.Fatalf("after release: %v active=%v", err, a.Active())
	}
}

func TestPipelineReassert(t *testing.T) {
	a, b := NewFake("a"), NewFake("b")
	p, clk := newTestPipeline(a, b)
	ctx := context.Background()
	p.Set(true, Takeover{Term: 3}, clk.Now())
	p.apply(ctx)
	p.Reassert("dual_active")
	p.apply(ctx)
	if got, want := a.Calls(), []string{"a activate term=3", "a activate term=3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	runs := p.Runs()
	if len(runs) != 2 || runs[1].Op != "reassert" || len(runs[1].Steps) != 2 {
		t.Fatalf("runs %+v", runs)
	}
	p.Set(false, Takeover{Term: 3}, clk.Now())
	p.apply(ctx)
	p.Reassert("link_up")
	p.apply(ctx)
	if n := len(b.Calls()); n != 3 {
		t.Fatalf("a standby re-asserted: %v", b.Calls())
	}
}

func TestPipelineKeepsTheStepsParts(t *testing.T) {
	a, b := NewFake("routes"), NewFake("probe")
	t0 := time.Unix(1000, 0)
	a.ReportParts(
		NewPart("rtb-2 (1 route)", t0, 30*time.Millisecond, 3, nil),
		NewPart("rtb-1 (2 routes)", t0, 20*time.Millisecond, 1, nil),
		NewPart("rtb-0 (1 route)", t0.Add(-time.Millisecond), 5*time.Millisecond, 0, io.ErrUnexpectedEOF),
	)
	p, clk := newTestPipeline(a, b)
	p.Set(true, Takeover{Term: 1}, clk.Now())
	p.apply(context.Background())
	run := p.Runs()[0]
	parts := run.Steps[0].Parts
	var targets []string
	for _, pt := range parts {
		targets = append(targets, pt.Target)
	}
	if want := []string{"rtb-0 (1 route)", "rtb-1 (2 routes)", "rtb-2 (1 route)"}; !reflect.DeepEqual(targets, want) {
		t.Fatalf("parts %v, want %v (by start, then target)", targets, want)
	}
	if parts[0].OK || parts[0].Error != io.ErrUnexpectedEOF.Error() || parts[0].Attempts != 1 {
		t.Fatalf("failed part %+v", parts[0])
	}
	if !parts[2].OK || parts[2].Attempts != 3 || parts[2].Duration != 30*time.Millisecond {
		t.Fatalf("retried part %+v", parts[2])
	}
	if len(run.Steps[1].Parts) != 0 {
		t.Fatalf("a step that reports nothing has no parts: %+v", run.Steps[1].Parts)
	}
	// Outside a pipeline step, reporting does nothing.
	ReportPart(context.Background(), NewPart("x", t0, 0, 1, nil))
}
