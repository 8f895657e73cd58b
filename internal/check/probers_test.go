package check

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func mustProber(t *testing.T, c Config) Prober {
	t.Helper()
	if c.Name == "" {
		c.Name = "t"
	}
	p, err := NewProber(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecProber(t *testing.T) {
	ctx := context.Background()
	if err := mustProber(t, Config{Type: "exec", Command: []string{"true"}}).Probe(ctx); err != nil {
		t.Errorf("true: %v", err)
	}
	err := mustProber(t, Config{Type: "exec", Command: []string{"false"}}).Probe(ctx)
	if err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("false: %v", err)
	}
	err = mustProber(t, Config{Type: "exec", Command: []string{"sh", "-c", `echo first; echo "  last words  " >&2; echo; exit 3`}}).Probe(ctx)
	if err == nil || !strings.Contains(err.Error(), "exit status 3: last words") {
		t.Errorf("exit 3: %v", err)
	}
	err = mustProber(t, Config{Type: "exec", Command: []string{"/nonexistent/baton-check"}}).Probe(ctx)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/baton-check") {
		t.Errorf("missing command: %v", err)
	}
}

func TestExecProberParentCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := mustProber(t, Config{Type: "exec", Command: []string{"sleep", "30"}}).Probe(ctx)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Probe with cancelled ctx = %v", err)
	}
}

func TestTCPProber(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	p := mustProber(t, Config{Type: "tcp", Target: addr, Timeout: 2 * time.Second})
	if err := p.Probe(context.Background()); err != nil {
		t.Errorf("open port: %v", err)
	}
	ln.Close()
	err = p.Probe(context.Background())
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("closed port: %v", err)
	}
}

func TestHTTPProber(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	probe := func(path string, timeout time.Duration) error {
		return mustProber(t, Config{Type: "http", Target: srv.URL + path, Timeout: timeout}).Probe(context.Background())
	}
	if err := probe("/ok", 2*time.Second); err != nil {
		t.Errorf("/ok: %v", err)
	}
	if err := probe("/down", 2*time.Second); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("/down: %v", err)
	}
	if err := probe("/redirect", 2*time.Second); err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("/redirect: %v (redirects must not be followed)", err)
	}
	if err := probe("/slow", 200*time.Millisecond); err == nil {
		t.Error("/slow passed despite the timeout")
	}
}

func TestNewProberRejects(t *testing.T) {
	for _, c := range []Config{
		{Type: "exec"},
		{Type: "exec", Command: []string{""}},
		{Type: "interface"},
		{Type: "interface", Interface: "../etc"},
		{Type: "interface", Interface: "a-very-long-interface-name"},
		{Type: "tcp", Target: "no-port"},
		{Type: "http", Target: "ftp://x/"},
		{Type: "http", Target: "http://"},
		{Type: "icmp", Target: "1.2.3.4"},
		{Type: ""},
	} {
		c.Name = "x"
		if _, err := NewProber(c); err == nil {
			t.Errorf("NewProber(%+v) succeeded", c)
		}
	}
}

func TestTailBufferAndLastLine(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("hello "))
	b.Write([]byte("world"))
	if got := string(b.Bytes()); got != "lo world" {
		t.Errorf("tail = %q", got)
	}
	b.Write([]byte("0123456789abc"))
	if got := string(b.Bytes()); got != "56789abc" {
		t.Errorf("tail = %q", got)
	}
	long := strings.Repeat("é", 300)
	got := lastLine([]byte("one\n" + long + "\n\n"))
	if len(got) > maxResultLine+3 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(got, "éé") {
		t.Errorf("lastLine(long) = %q (%d bytes)", got, len(got))
	}
	if got := lastLine([]byte("a\nb\xff\n")); got != "b?" {
		t.Errorf("lastLine(invalid utf8) = %q", got)
	}
	if got := lastLine(nil); got != "" {
		t.Errorf("lastLine(nil) = %q", got)
	}
}
