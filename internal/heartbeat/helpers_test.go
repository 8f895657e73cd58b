package heartbeat

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor is how long real-time polls wait for packets to arrive.
const waitFor = 5 * time.Second

// eventually polls cond until it holds or waitFor has passed. It only
// waits for real I/O; logical time is moved with clock.Fake.Advance.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func listenUDP(t *testing.T) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("binding UDP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("binding TCP: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// recorder collects a monitor's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func record(m *Monitor) *recorder {
	r := &recorder{}
	go func() {
		for e := range m.Events() {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func (r *recorder) count(match func(Event) bool) int {
	n := 0
	for _, e := range r.all() {
		if match(e) {
			n++
		}
	}
	return n
}

func (r *recorder) wait(t *testing.T, what string, match func(Event) bool) Event {
	t.Helper()
	var found Event
	eventually(t, what, func() bool {
		for _, e := range r.all() {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func kind(k EventKind) func(Event) bool { return func(e Event) bool { return e.Kind == k } }

func pathEvent(k EventKind, path string) func(Event) bool {
	return func(e Event) bool { return e.Kind == k && e.Path == path }
}

// running is a monitor started by start.
type running struct {
	m      *Monitor
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, m *Monitor) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	select {
	case <-m.ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(waitFor):
		cancel()
		t.Fatal("Run did not get ready")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(waitFor):
		t.Fatal("Run did not return after cancel")
	}
}

func status(m *Monitor, path string) PathStatus {
	for _, p := range m.Status().Paths {
		if p.Name == path {
			return p
		}
	}
	return PathStatus{}
}

// relay forwards datagrams to a monitor, or drops them, or hands them to
// the test, so a test can cut a path or hold a packet in flight.
type relay struct {
	conn net.PacketConn
	to   net.Addr
	drop atomic.Bool
	hold chan []byte // when set, packets go here instead of to
}

func newRelay(t *testing.T, to net.Addr, hold bool) *relay {
	r := &relay{conn: listenUDP(t), to: to}
	if hold {
		r.hold = make(chan []byte, 64)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := r.conn.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || r.drop.Load() {
				continue
			}
			if r.hold != nil {
				r.hold <- append([]byte(nil), buf[:n]...)
				continue
			}
			_, _ = r.conn.WriteTo(buf[:n], r.to)
		}
	}()
	return r
}

func (r *relay) addr() string { return r.conn.LocalAddr().String() }
