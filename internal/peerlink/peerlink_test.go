package peerlink

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonha/baton/internal/pki"
)

func link(t *testing.T, dir, node, peer, listen, addr string) *Link {
	t.Helper()
	l, err := New(Config{Node: node, Peer: peer, Listen: listen, Address: addr,
		CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, node+".crt"), KeyFile: filepath.Join(dir, node+".key")})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestStreamRoundTripAndAuth(t *testing.T) {
	dir := t.TempDir()
	if err := pki.Generate(dir, []string{"a", "b", "mallory"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if err := pki.Generate(dir, []string{"a"}, time.Hour, false); err == nil {
		t.Fatal("keygen must refuse to overwrite")
	}
	b := link(t, dir, "b", "a", "127.0.0.1:0", "")
	got := make(chan string, 4)
	b.Handle("echo", func(ctx context.Context, s *Stream) {
		for {
			typ, p, err := s.Recv()
			if err != nil {
				return
			}
			got <- string(p)
			_ = s.Send(typ, p)
		}
	})
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)

	a := link(t, dir, "a", "b", "127.0.0.1:0", b.Addr().String())
	s, err := a.Dial(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SendBatch(7, [][]byte{[]byte("one"), []byte("two")}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two"} {
		typ, p, err := s.Recv()
		if err != nil || typ != 7 || string(p) != want {
			t.Fatalf("got %d %q %v, want 7 %q", typ, p, err, want)
		}
	}
	if err := s.Send(1, make([]byte, MaxFrame)); err == nil {
		t.Fatal("oversized frame must be refused")
	}

	// A certificate from the right CA but for another node is refused.
	m := link(t, dir, "mallory", "b", "127.0.0.1:0", b.Addr().String())
	if ms, err := m.Dial(ctx, "echo"); err == nil {
		_ = ms.Send(1, []byte("evil"))
		if _, _, err := ms.Recv(); err == nil {
			t.Fatal("a stream from a non-peer certificate must fail")
		}
	}
	// A certificate from another CA is refused.
	other := t.TempDir()
	if err := pki.Generate(other, []string{"a"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	x := link(t, other, "a", "b", "127.0.0.1:0", b.Addr().String())
	if _, err := x.Dial(ctx, "echo"); err == nil {
		t.Fatal("a foreign CA must be refused")
	}
	select {
	case p := <-got:
		if p != "one" {
			t.Fatalf("unexpected %q", p)
		}
	default:
	}
}
