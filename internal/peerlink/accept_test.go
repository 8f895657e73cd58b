package peerlink

import (
	"context"
	"net"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/pki"
)

// emfileListener fails its first n Accepts as a process out of
// descriptors does.
type emfileListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// An Accept error (EMFILE) does not end the link: it retries with a
// backoff and serves the peer once descriptors are back.
func TestAcceptErrorsAreRetried(t *testing.T) {
	dir := t.TempDir()
	if err := pki.Generate(dir, []string{"a", "b"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Unix(1e9, 0))
	b, err := New(Config{Node: "b", Peer: "a", Listen: "127.0.0.1:0", Clock: clk,
		CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "b.crt"), KeyFile: filepath.Join(dir, "b.key")})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{}, 1)
	b.Handle("x", func(ctx context.Context, s *Stream) { served <- struct{}{} })
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	fl := &emfileListener{Listener: b.ln}
	fl.fails.Store(20)
	b.ln = fl
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	// The fake clock runs the backoffs through; twenty failures later the
	// next Accept is real.
	if err := clk.Drive(acceptBackoffMax, 30*time.Second, func() error {
		for fl.fails.Load() >= 0 {
			select {
			case err := <-runErr:
				return err
			default:
			}
			runtime.Gosched()
		}
		return nil
	}); err != nil {
		t.Fatalf("Run during the EMFILE errors: %v", err)
	}
	a := link(t, dir, "a", "b", "127.0.0.1:0", b.Addr().String())
	s, err := a.Dial(ctx, "x")
	if err != nil {
		t.Fatalf("dial after the errors: %v", err)
	}
	defer s.Close()
	select {
	case <-served:
	case err := <-runErr:
		t.Fatalf("Run ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("stream not served after Accept errors")
	}
}

// A connection whose handshake is refused (garbage, no certificate) is
// counted in Dropped.
func TestRefusedHandshakesCounted(t *testing.T) {
	dir := t.TempDir()
	if err := pki.Generate(dir, []string{"a", "b"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	b := link(t, dir, "b", "a", "127.0.0.1:0", "127.0.0.1:9")
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	for range 3 {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Read(make([]byte, 64)) // returns once the link closes it
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.Dropped() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("Dropped = %d after 3 refused handshakes", b.Dropped())
		}
		runtime.Gosched()
	}
}

// A peer with a valid certificate cannot hold more than MaxStreams
// streams: one more is closed and counted, and a slot freed serves again.
func TestStreamsCapped(t *testing.T) {
	dir := t.TempDir()
	if err := pki.Generate(dir, []string{"a", "b"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Node: "b", Peer: "a", Listen: "127.0.0.1:0", MaxStreams: 2,
		CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "b.crt"), KeyFile: filepath.Join(dir, "b.key")})
	if err != nil {
		t.Fatal(err)
	}
	b.Handle("x", func(ctx context.Context, s *Stream) {
		_ = s.Send(1, []byte("hi"))
		for { // held until the peer closes it
			if _, _, err := s.Recv(); err != nil {
				return
			}
		}
	})
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.Run(ctx) }()
	a := link(t, dir, "a", "b", "127.0.0.1:0", b.Addr().String())
	open := func() (*Stream, error) {
		s, err := a.Dial(ctx, "x")
		if err != nil {
			return nil, err
		}
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := s.Recv(); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	s1, err := open()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s3, err := open(); err == nil {
		s3.Close()
		t.Fatal("a third stream was served with MaxStreams 2")
	}
	if b.Dropped() != 1 {
		t.Fatalf("Dropped = %d, want the third stream", b.Dropped())
	}
	s1.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := open()
		if err == nil {
			s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream served after one closed: %v", err)
		}
	}
}
