package peerview

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/pki"
)

func link(t *testing.T, dir, node, peer, addr string) *peerlink.Link {
	t.Helper()
	l, err := peerlink.New(peerlink.Config{Node: node, Peer: peer, Listen: "127.0.0.1:0", Address: addr,
		CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, node+".crt"), KeyFile: filepath.Join(dir, node+".key")})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pair runs node b's status service on a real mutual-TLS peer link and
// returns a's dialer to it and a counter of b's answers.
func pair(t *testing.T, status func() api.Status) (Dialer, *atomic.Int32) {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Generate(dir, []string{"a", "b"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var served atomic.Int32
	b := link(t, dir, "b", "a", "")
	b.Handle(Service, func(ctx context.Context, st *peerlink.Stream) {
		_ = Serve(ctx, st, func() api.Status { served.Add(1); return status() })
	})
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.Run(ctx) }()
	a := link(t, dir, "a", "b", b.Addr().String())
	return func(ctx context.Context) (Stream, error) { return a.Dial(ctx, Service) }, &served
}

func TestFetchOverThePeerLink(t *testing.T) {
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	st := api.Status{Node: "b", Role: "ACTIVE", Term: 7,
		Peer:       api.PeerStatus{Name: "a", Paths: []api.Path{{Name: "hb", Up: true, RTTMillis: 0.3}}},
		Subsystems: map[string]any{"sessions": map[string]any{"held": 3}}}
	for i := range 60 {
		st.Transitions = append(st.Transitions, api.Transition{At: now.Add(time.Duration(i) * time.Minute), Term: uint64(i)})
	}
	dial, _ := pair(t, func() api.Status { return st })
	got, err := Fetch(context.Background(), dial)
	if err != nil {
		t.Fatal(err)
	}
	if got.Node != "b" || got.Role != "ACTIVE" || got.Term != 7 || len(got.Peer.Paths) != 1 || got.Peer.Paths[0].Name != "hb" {
		t.Fatalf("fetched %+v", got)
	}
	if len(got.Transitions) != keepTransitions || got.Transitions[keepTransitions-1].Term != 59 || got.Subsystems != nil {
		t.Fatalf("the view must keep the newest %d transitions and no subsystems: %d, %v", keepTransitions, len(got.Transitions), got.Subsystems)
	}
}

func TestViewReusesAFreshFetchAndKeepsTheLastOnFailure(t *testing.T) {
	dial, served := pair(t, func() api.Status { return api.Status{Node: "b", Role: "STANDBY"} })
	var down atomic.Bool
	clk := clock.NewFake(time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC))
	v := New(func(ctx context.Context) (Stream, error) {
		if down.Load() {
			return nil, errors.New("dialing peer link 10.0.0.2:5407: connection refused")
		}
		return dial(ctx)
	}, clk)
	ctx := context.Background()
	s, at, err := v.Get(ctx)
	if err != nil || s.Role != "STANDBY" || !at.Equal(clk.Now()) {
		t.Fatalf("first get: %+v %v %v", s, at, err)
	}
	if _, _, err := v.Get(ctx); err != nil || served.Load() != 1 {
		t.Fatalf("a second get within MaxAge must reuse the fetch: %v, %d answers", err, served.Load())
	}
	fetched := clk.Now()
	clk.Advance(MaxAge)
	down.Store(true)
	s, at, err = v.Get(ctx)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || s.Role != "STANDBY" || !at.Equal(fetched) {
		t.Fatalf("after a failed fetch: %+v %v %v, want the last status, its time and the error", s, at, err)
	}
	clk.Advance(MaxAge)
	down.Store(false)
	if s, at, err = v.Get(ctx); err != nil || !at.Equal(clk.Now()) || served.Load() != 2 {
		t.Fatalf("after the link is back: %+v %v %v", s, at, err)
	}
	var none *View
	if _, _, err := none.Get(ctx); !errors.Is(err, ErrNoLink) {
		t.Fatalf("nil view: %v", err)
	}
}

func TestServeRefusesAnUnknownRequest(t *testing.T) {
	dial, _ := pair(t, func() api.Status { return api.Status{} })
	st, err := dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Send(9, nil); err != nil {
		t.Fatal(err)
	}
	typ, b, err := st.Recv()
	if err != nil || typ != frameError || !strings.Contains(string(b), "unknown request type 9") {
		t.Fatalf("answer %d %q %v", typ, b, err)
	}
}

func TestGetDoesNotWaitForAPeerThatDoesNotAnswer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	v := New(func(ctx context.Context) (Stream, error) {
		select { // a black-holed peer: the dial hangs until its timeout
		case <-release:
		case <-ctx.Done():
		}
		return nil, errors.New("dialing peer link: i/o timeout")
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller will not wait at all
	if _, at, err := v.Get(ctx); err == nil || !at.IsZero() || !strings.Contains(err.Error(), "not answered yet") {
		t.Fatalf("get while the first fetch hangs: %v %v", at, err)
	}
}
