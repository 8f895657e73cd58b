package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
)

var start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newResponder(t *testing.T, mode string) (*Responder, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(start)
	r, err := New(Config{Mode: mode, Listen: "127.0.0.1:0", UnconnectedAfter: 10 * time.Second}, "nva-a", clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		r.Close()
	})
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return r, clk
}

var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHTTPMode(t *testing.T) {
	r, clk := newResponder(t, "http")
	if r.Name() != "probe" {
		t.Errorf("Name() = %q", r.Name())
	}
	base := "http://" + r.Addr().String()
	ctx := context.Background()

	steps := []struct {
		do     func()
		method string
		path   string
		code   int
		body   string
	}{
		{nil, "GET", "/", 503, "nva-a is init\n"},
		{func() { r.SetState("STANDBY") }, "GET", "/", 503, "nva-a is standby\n"},
		{func() { r.Activate(ctx, action.Takeover{Term: 2}) }, "GET", "/", 200, "nva-a is active\n"},
		{nil, "GET", "/any/path?x=1", 200, "nva-a is active\n"},
		{nil, "HEAD", "/", 200, ""},
		{func() { r.SetState("fault"); r.Deactivate(ctx, action.Takeover{Term: 3}) }, "GET", "/", 503, "nva-a is fault\n"},
		{nil, "HEAD", "/health", 503, ""},
		{func() { r.SetState("maintenance") }, "POST", "/", 503, "nva-a is maintenance\n"},
	}
	for i, s := range steps {
		if s.do != nil {
			s.do()
		}
		code, body := get(t, s.method, base+s.path)
		if code != s.code || body != s.body {
			t.Errorf("step %d: %s %s = %d %q, want %d %q", i, s.method, s.path, code, body, s.code, s.body)
		}
	}
	st := r.Stats()
	if st.Count200 != 3 || st.Count503 != 5 {
		t.Errorf("counts 200=%d 503=%d, want 3 and 5", st.Count200, st.Count503)
	}
	if st.LastSource != "127.0.0.1" || !st.LastProbe.Equal(start) || !st.Connected || st.Active || !st.Listening {
		t.Errorf("Stats = %+v", st)
	}
	// No probes for UnconnectedAfter: unconnected.
	clk.Advance(9 * time.Second)
	if !r.Connected(clk.Now()) {
		t.Error("unconnected before UnconnectedAfter")
	}
	clk.Advance(time.Second)
	if r.Connected(clk.Now()) || r.Stats().Connected {
		t.Error("still connected after UnconnectedAfter without probes")
	}
	get(t, "GET", base)
	if !r.Connected(clk.Now()) || !r.Stats().LastProbe.Equal(clk.Now()) {
		t.Error("not connected after a probe")
	}
}

func TestUnconnectedWithoutProbes(t *testing.T) {
	r, clk := newResponder(t, "http")
	if r.Connected(clk.Now()) || r.Stats().Connected {
		t.Error("connected before any probe")
	}
}

func TestHTTPVerifyReopensLostListener(t *testing.T) {
	r, _ := newResponder(t, "http")
	ctx := context.Background()
	if err := r.Activate(ctx, action.Takeover{}); err != nil {
		t.Fatal(err)
	}
	addr := r.Addr().String()
	// Lose the socket behind the responder's back.
	r.mu.Lock()
	l := r.cur
	r.mu.Unlock()
	l.ln.Close()
	<-l.done
	if r.Stats().Listening {
		t.Fatal("lost listener still reported as listening")
	}
	// Verify repairs both the socket and a drifted answer.
	r.mu.Lock()
	r.active = false
	r.mu.Unlock()
	if err := r.Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := r.Addr().String(); got != addr {
		t.Errorf("reopened on %s, want %s", got, addr)
	}
	if code, _ := get(t, "GET", "http://"+addr); code != 200 {
		t.Errorf("after Verify(true): %d", code)
	}
	if err := r.Verify(ctx, false); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, "GET", "http://"+addr); code != 503 {
		t.Errorf("after Verify(false): %d", code)
	}
}

func dial(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, 5*time.Second)
}

func TestTCPMode(t *testing.T) {
	r, _ := newResponder(t, "tcp")
	ctx := context.Background()
	if r.Addr() != nil || r.Stats().Listening {
		t.Fatal("tcp mode listens before Activate")
	}
	if err := r.Activate(ctx, action.Takeover{Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.Activate(ctx, action.Takeover{Term: 1}); err != nil {
		t.Fatalf("second Activate: %v", err)
	}
	addr := r.Addr().String()
	held, err := dial(addr)
	if err != nil {
		t.Fatalf("dialling active tcp probe: %v", err)
	}
	defer held.Close()
	// A probe that closes at once, like a load balancer's.
	c2, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	// Both were accepted (a real socket event: poll for it).
	waitFor(t, "two accepted probes", func() bool { return r.Stats().Count200 == 2 })

	if err := r.Deactivate(ctx, action.Takeover{Term: 2}); err != nil {
		t.Fatal(err)
	}
	// The held connection is closed by Deactivate.
	held.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("held connection not closed by Deactivate: %v", err)
	}
	if c, err := dial(addr); err == nil {
		c.Close()
		t.Fatal("tcp probe port open while not active")
	}
	st := r.Stats()
	if st.Count200 != 2 || st.Count503 != 0 || st.LastSource != "127.0.0.1" || st.Listening {
		t.Errorf("Stats = %+v", st)
	}
	// Reactivation opens the same port again.
	if err := r.Activate(ctx, action.Takeover{Term: 3}); err != nil {
		t.Fatal(err)
	}
	if got := r.Addr().String(); got != addr {
		t.Errorf("reopened on %s, want %s", got, addr)
	}
	c3, err := dial(addr)
	if err != nil {
		t.Fatalf("dialling reactivated probe: %v", err)
	}
	c3.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTCPVerify(t *testing.T) {
	r, _ := newResponder(t, "tcp")
	ctx := context.Background()
	if err := r.Activate(ctx, action.Takeover{}); err != nil {
		t.Fatal(err)
	}
	addr := r.Addr().String()
	r.mu.Lock()
	l := r.cur
	r.mu.Unlock()
	l.ln.Close()
	<-l.done
	if r.Addr() != nil {
		t.Fatal("lost listener still reported")
	}
	if err := r.Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	c, err := dial(addr)
	if err != nil {
		t.Fatalf("Verify(true) did not reopen %s: %v", addr, err)
	}
	c.Close()
	// An inactive node must not hold the port open.
	if err := r.Verify(ctx, false); err != nil {
		t.Fatal(err)
	}
	if r.Addr() != nil {
		t.Fatal("Verify(false) left the tcp port open")
	}
}

func TestBindError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	r, err := New(Config{Listen: busy.Addr().String()}, "nva-a", clock.NewFake(start), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "binding probe listener "+busy.Addr().String()) {
		t.Fatalf("Start on a busy port = %v", err)
	}
}

func TestCloseAndStartContext(t *testing.T) {
	clk := clock.NewFake(start)
	r, err := New(Config{Listen: "127.0.0.1:0"}, "nva-a", clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := r.Addr().String()
	cancel()
	waitFor(t, "the listener to close after the Start context ended", func() bool { return r.Addr() == nil })
	r.Close() // idempotent, waits for the goroutines
	if c, err := dial(addr); err == nil {
		c.Close()
		t.Fatal("port open after Close")
	}
	if err := r.Activate(context.Background(), action.Takeover{}); err == nil {
		t.Error("Activate after Close succeeded")
	}
}

func TestNewRejects(t *testing.T) {
	clk := clock.NewFake(start)
	for _, c := range []struct {
		cfg  Config
		node string
	}{
		{Config{Mode: "off"}, "a"},
		{Config{Mode: "udp"}, "a"},
		{Config{Listen: "8444"}, "a"},
		{Config{}, ""},
	} {
		if _, err := New(c.cfg, c.node, clk, nil); err == nil {
			t.Errorf("New(%+v, %q) succeeded", c.cfg, c.node)
		}
	}
	r, err := New(Config{}, "a", clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.listen != DefaultListen || r.unconnectedAfter != DefaultUnconnectedAfter || r.mode != ModeHTTP {
		t.Errorf("defaults: %q %v %q", r.listen, r.unconnectedAfter, r.mode)
	}
}

func TestGuardWithholdsActiveAnswer(t *testing.T) {
	r, _ := newResponder(t, "http")
	base := "http://" + r.Addr().String()
	if err := r.Activate(context.Background(), action.Takeover{Term: 1}); err != nil {
		t.Fatal(err)
	}
	leaseValid := true
	r.SetGuard(func() bool { return leaseValid })
	if code, _ := get(t, "GET", base+"/"); code != 200 {
		t.Fatalf("guard says yes: got %d, want 200", code)
	}
	leaseValid = false // e.g. the process resumed after a freeze longer than its lease
	if code, body := get(t, "GET", base+"/"); code != 503 {
		t.Fatalf("guard says no: got %d %q, want 503", code, body)
	}
}
