package localroutes

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
)

// fakeKernel is a routing table in memory.
type fakeKernel struct {
	mu     sync.Mutex
	routes []Route
	fail   error
}

func (k *fakeKernel) List(table int) ([]Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.routes), nil
}

func (k *fakeKernel) Replace(r Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	k.routes = slices.DeleteFunc(k.routes, func(x Route) bool { return x.key() == r.key() })
	k.routes = append(k.routes, r)
	return nil
}

func (k *fakeKernel) Delete(r Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.routes = slices.DeleteFunc(k.routes, func(x Route) bool { return x == r })
	return nil
}

func (k *fakeKernel) Subscribe(context.Context, chan<- struct{}) error { return nil }

// frames is a stream fed by the test.
type frames struct{ ch chan []byte }

func (f *frames) Send(uint8, []byte) error { return nil }
func (f *frames) Recv() (uint8, []byte, error) {
	p, ok := <-f.ch
	if !ok {
		return 0, nil, io.EOF
	}
	return frameSnapshot, p, nil
}
func (f *frames) Close() error { return nil }

func frame(active bool, rs ...Route) []byte {
	b, _ := json.Marshal(snapshot{Active: active, Routes: rs})
	return b
}

var (
	r1 = Route{Dst: "10.200.0.0/24", Gw: "10.0.0.1", Dev: "eth1", Protocol: 4, Table: 254}
	r2 = Route{Dst: "10.200.1.0/24", Gw: "10.0.0.1", Dev: "eth1", Protocol: 4, Table: 254}
	rx = Route{Dst: "192.0.2.0/24", Gw: "10.0.0.1", Dev: "eth1", Protocol: 4, Table: 254} // outside the match
)

func newTestSync(t *testing.T, k Kernel) *Sync {
	cfg := Config{Match: Match{Prefixes: []string{"10.200.0.0/16"}, Table: 254}, Interval: time.Second}
	s, err := New(cfg, Options{Kernel: k, Dial: func(context.Context) (Stream, error) { return nil, errors.New("unused") },
		Clock: clock.NewFake(time.Unix(0, 0)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Only what the peer sent while active is kept, narrowed by this node's
// own match; a bad frame ends the stream without touching the copy.
func TestReceiveKeepsTheActivePeersRoutes(t *testing.T) {
	s := newTestSync(t, &fakeKernel{})
	f := &frames{ch: make(chan []byte, 4)}
	f.ch <- frame(true, r1, rx)
	f.ch <- frame(false) // the peer stepped down: its empty table is not copied
	f.ch <- []byte(`{"active":true,"routes":[{"dst":"nope"}]}`)
	close(f.ch)
	err := s.receive(context.Background(), f)
	if err == nil {
		t.Fatal("a malformed frame was accepted")
	}
	if got := s.Status().(Status).Held; !slices.Equal(got, []Route{r1}) {
		t.Fatalf("held %+v, want only r1", got)
	}
}

func TestActivateDeactivateVerify(t *testing.T) {
	k := &fakeKernel{}
	s := newTestSync(t, k)
	s.held = []Route{r1, r2}
	ctx := context.Background()
	if err := s.Activate(ctx, action.Takeover{Term: 1}); err != nil {
		t.Fatal(err)
	}
	if len(k.routes) != 2 {
		t.Fatalf("kernel %+v", k.routes)
	}
	_ = k.Delete(r2)
	if err := s.Verify(ctx, true); err != nil || len(k.routes) != 2 {
		t.Fatalf("Verify: %v, kernel %+v", err, k.routes)
	}
	if err := s.Deactivate(ctx, action.Takeover{Term: 2}); err != nil || len(k.routes) != 0 {
		t.Fatalf("Deactivate: %v, kernel %+v", err, k.routes)
	}
	k.fail = errors.New("EPERM")
	if err := s.Activate(ctx, action.Takeover{Term: 3}); err == nil {
		t.Fatal("an install failure was not reported")
	}
}

func TestMatch(t *testing.T) {
	m, err := newMatcher(Match{Prefixes: []string{"10.200.0.0/16", "fd00::/8"}, Table: 254, Protocol: "static"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		r    Route
		want bool
	}{
		{r1, true},
		{rx, false},
		{Route{Dst: "10.0.0.0/8", Protocol: 4, Table: 254}, false}, // wider than the prefix
		{Route{Dst: "10.200.3.0/24", Protocol: 3, Table: 254}, false},
		{Route{Dst: "10.200.3.0/24", Protocol: 4, Table: 100}, false},
		{Route{Dst: "fd00:1::/64", Protocol: 4, Table: 254}, true},
	} {
		if got := m.match(tc.r); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.r, got, tc.want)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	c := Config{Match: Match{Prefixes: []string{"x"}, Protocol: "carrier-pigeon"}}
	c.SetDefaults()
	c.Interval = time.Millisecond
	got := map[string]bool{}
	c.Check(func(k, m string) { got[k] = true })
	for _, k := range []string{"match.prefixes[0]", "match.protocol", "interval"} {
		if !got[k] {
			t.Errorf("no problem reported for %s: %v", k, got)
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(frame(true, r1, r2))
	f.Add([]byte(`{"active":false,"routes":null}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := decodeSnapshot(p)
		if err != nil {
			return
		}
		for _, r := range s.Routes {
			if r.check() != nil {
				t.Fatalf("accepted a bad route %+v", r)
			}
		}
	})
}
