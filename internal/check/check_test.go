package check

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
)

type change struct {
	healthy bool
	failing []string
}

type recorder struct{ ch chan change }

func newRecorder() *recorder { return &recorder{ch: make(chan change, 100)} }

func (r *recorder) onChange(h bool, f []string) { r.ch <- change{h, f} }

func (r *recorder) drain() []change {
	var out []change
	for {
		select {
		case c := <-r.ch:
			out = append(out, c)
		default:
			return out
		}
	}
}

// nopProber is never run: hysteresis tests feed results by hand.
type nopProber struct{}

func (nopProber) Probe(context.Context) error { return nil }

func TestHysteresis(t *testing.T) {
	fail := errors.New("boom")
	type step struct {
		pass    bool
		healthy bool
		notify  bool // onChange expected after this step
	}
	P := func(healthy, notify bool) step { return step{true, healthy, notify} }
	F := func(healthy, notify bool) step { return step{false, healthy, notify} }
	cases := []struct {
		name       string
		rise, fall int
		steps      []step
	}{
		{"first pass decides", 2, 3, []step{P(true, true), P(true, false)}},
		{"first fail decides", 2, 3, []step{F(false, true), F(false, false)}},
		{"fall needs consecutive failures", 2, 3, []step{
			P(true, true), F(true, false), F(true, false), P(true, false),
			F(true, false), F(true, false), F(false, true), F(false, false),
		}},
		{"rise needs consecutive passes", 2, 3, []step{
			F(false, true), P(false, false), F(false, false), P(false, false), P(true, true), P(true, false),
		}},
		{"rise 3", 3, 1, []step{
			P(true, true), F(false, true), P(false, false), P(false, false), P(true, true),
		}},
		{"rise 1 fall 1 flips every time", 1, 1, []step{
			P(true, true), F(false, true), P(true, true), P(true, false), F(false, true),
		}},
		{"defaults (rise 2 fall 3)", 0, 0, []step{
			P(true, true), F(true, false), F(true, false), F(false, true), P(false, false), P(true, true),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			clk := clock.NewFake(time.Unix(0, 0))
			s, err := NewSetWithProbers([]Config{{Name: "c", Type: "exec", Rise: tc.rise, Fall: tc.fall}},
				[]Prober{nopProber{}}, clk, nil, rec.onChange)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				var perr error
				if !st.pass {
					perr = fail
				}
				s.record(0, perr, clk.Now(), 0)
				if got := s.Healthy(); got != st.healthy {
					t.Fatalf("step %d: Healthy() = %v, want %v", i, got, st.healthy)
				}
				got := rec.drain()
				if !st.notify {
					if len(got) != 0 {
						t.Fatalf("step %d: unexpected onChange %+v", i, got)
					}
					continue
				}
				want := change{healthy: st.healthy}
				if !st.healthy {
					want.failing = []string{"c"}
				}
				if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
					t.Fatalf("step %d: onChange calls %+v, want [%+v]", i, got, want)
				}
			}
			status := s.Status()[0]
			last := tc.steps[len(tc.steps)-1]
			if status.Healthy != last.healthy || !status.Known {
				t.Errorf("Status = %+v", status)
			}
		})
	}
}

func TestSetSettlesWhenEveryCheckHasAResult(t *testing.T) {
	rec := newRecorder()
	clk := clock.NewFake(time.Unix(0, 0))
	checks := []Config{{Name: "a"}, {Name: "b"}, {Name: "c", Rise: 1, Fall: 1}}
	s, err := NewSetWithProbers(checks, []Prober{nopProber{}, nopProber{}, nopProber{}}, clk, nil, rec.onChange)
	if err != nil {
		t.Fatal(err)
	}
	settled := func() bool {
		select {
		case <-s.Settled():
			return true
		default:
			return false
		}
	}
	s.record(2, errors.New("down"), clk.Now(), 0)
	s.record(0, nil, clk.Now(), 0)
	if settled() || s.Healthy() {
		t.Fatal("settled before every check had a result")
	}
	if got := rec.drain(); len(got) != 0 {
		t.Fatalf("onChange before settling: %+v", got)
	}
	// c recovers before the set settles: no callback yet.
	s.record(2, nil, clk.Now(), 0)
	if got := rec.drain(); len(got) != 0 {
		t.Fatalf("onChange before settling: %+v", got)
	}
	s.record(1, errors.New("x"), clk.Now(), 0)
	if !settled() {
		t.Fatal("not settled after every check had a result")
	}
	want := []change{{false, []string{"b"}}}
	if got := rec.drain(); !reflect.DeepEqual(got, want) {
		t.Fatalf("onChange = %+v, want %+v", got, want)
	}
	s.record(2, errors.New("y"), clk.Now(), 0) // c falls (fall 1)
	want = []change{{false, []string{"b", "c"}}}
	if got := rec.drain(); !reflect.DeepEqual(got, want) {
		t.Fatalf("onChange = %+v, want %+v", got, want)
	}
	if got := s.Failing(); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("Failing() = %v", got)
	}
}

func TestEmptySetIsSettledAndHealthy(t *testing.T) {
	s, err := NewSet(nil, clock.NewFake(time.Unix(0, 0)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Settled():
	default:
		t.Fatal("empty set not settled")
	}
	if !s.Healthy() {
		t.Fatal("empty set not healthy")
	}
}

func TestNewSetRejects(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	if _, err := NewSetWithProbers([]Config{{Name: "a"}, {Name: "a"}}, []Prober{nopProber{}, nopProber{}}, clk, nil, nil); err == nil {
		t.Error("duplicate names accepted")
	}
	if _, err := NewSetWithProbers([]Config{{Name: ""}}, []Prober{nopProber{}}, clk, nil, nil); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := NewSetWithProbers([]Config{{Name: "a"}}, nil, clk, nil, nil); err == nil {
		t.Error("missing prober accepted")
	}
	if _, err := NewSet([]Config{{Name: "a", Type: "bogus"}}, clk, nil, nil); err == nil {
		t.Error("unknown type accepted")
	}
}

// fakeProber hands each probe to the test, which answers it.
type fakeProber struct{ calls chan *call }

type call struct {
	ctx   context.Context
	reply chan error
}

func newFakeProber() *fakeProber { return &fakeProber{calls: make(chan *call)} }

func (f *fakeProber) Probe(ctx context.Context) error {
	c := &call{ctx: ctx, reply: make(chan error, 1)}
	select {
	case f.calls <- c:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeProber) next(t *testing.T) *call {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a probe")
		return nil
	}
}

// assertIdle checks that no probe is in flight; probes are only started
// by timers, so none can start until the clock is advanced.
func (f *fakeProber) assertIdle(t *testing.T) {
	t.Helper()
	select {
	case <-f.calls:
		t.Fatal("unexpected probe")
	default:
	}
}

func TestRunSchedulesAndTimesOut(t *testing.T) {
	rec := newRecorder()
	clk := clock.NewFake(time.Unix(100, 0))
	a, b := newFakeProber(), newFakeProber()
	checks := []Config{
		{Name: "a", Type: "exec", Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1},
		{Name: "b", Type: "tcp", Interval: 3 * time.Second, Timeout: time.Second, Rise: 1, Fall: 1},
	}
	s, err := NewSetWithProbers(checks, []Prober{a, b}, clk, nil, rec.onChange)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// Both checks run at once.
	a.next(t).reply <- nil
	b.next(t).reply <- nil
	<-s.Settled()
	// The settle callback is made by whichever check came second; wait
	// for it.
	if got := <-rec.ch; !got.healthy {
		t.Fatalf("settled unhealthy: %+v", got)
	}
	if err := s.Run(ctx); err == nil {
		t.Error("second Run succeeded")
	}

	// t=101: a runs again and hangs; its timeout (500ms) fails it.
	clk.Advance(time.Second)
	c := a.next(t)
	clk.Advance(400 * time.Millisecond)
	if c.ctx.Err() != nil {
		t.Fatal("probe cancelled before its timeout")
	}
	clk.Advance(100 * time.Millisecond)
	select {
	case <-c.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("probe not cancelled at its timeout")
	}
	if got := <-rec.ch; got.healthy || !reflect.DeepEqual(got.failing, []string{"a"}) {
		t.Fatalf("after timeout onChange %+v", got)
	}
	st := s.Status()[0]
	if !strings.Contains(st.LastResult, "timed out after 500ms") || st.Failures != 1 || st.Healthy {
		t.Errorf("status after timeout = %+v", st)
	}
	if !st.LastRun.Equal(time.Unix(101, 0)) || st.LastDuration != 500*time.Millisecond {
		t.Errorf("LastRun %v LastDuration %v", st.LastRun, st.LastDuration)
	}
	a.assertIdle(t)
	b.assertIdle(t)

	// t=102: interval counts from the start of the previous run.
	clk.Advance(500 * time.Millisecond)
	a.next(t).reply <- nil
	if got := <-rec.ch; !got.healthy {
		t.Fatalf("after recovery onChange %+v", got)
	}
	// t=103: both are due.
	clk.Advance(time.Second)
	a.next(t).reply <- nil
	b.next(t).reply <- errors.New("refused")
	if got := <-rec.ch; got.healthy || !reflect.DeepEqual(got.failing, []string{"b"}) {
		t.Fatalf("after b failed onChange %+v", got)
	}
	if got := s.Status()[1]; got.Failures != 1 || got.Healthy || got.LastResult != "refused" {
		t.Errorf("b after one failure = %+v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := rec.drain(); len(got) != 0 {
		t.Errorf("unexpected onChange %+v", got)
	}
}
