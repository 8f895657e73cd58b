package heartbeat

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/lab/labtest"
	"github.com/batonha/baton/internal/role"
)

func probeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTCPProbe(t *testing.T) {
	ln := listenTCP(t)
	if err := tcpProber(ln.Addr().String())(probeCtx(t)); err != nil {
		t.Fatalf("probe of a listener: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := tcpProber(addr)(probeCtx(t)); err == nil {
		t.Fatal("probe of a closed port succeeded")
	}
}

func TestHTTPProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/standby", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tls := httptest.NewTLSServer(mux)
	t.Cleanup(tls.Close)
	cases := []struct {
		url      string
		insecure bool
		up       bool
	}{
		{srv.URL + "/ok", false, true},
		{srv.URL + "/standby", false, false},
		{srv.URL + "/moved", false, false},
		{tls.URL + "/ok", true, true},
		{tls.URL + "/ok", false, false}, // self-signed certificate
	}
	for _, c := range cases {
		err := httpProber(c.url, c.insecure)(probeCtx(t))
		if (err == nil) != c.up {
			t.Errorf("probe %s (insecure=%v): err = %v, want up=%v", c.url, c.insecure, err, c.up)
		}
	}
}

func TestICMPProbe(t *testing.T) {
	labtest.RequireRoot(t)
	p := newICMPProber(net.ParseIP("127.0.0.1"))
	for i := 0; i < 3; i++ {
		if err := p.probe(probeCtx(t)); err != nil {
			t.Fatalf("ping 127.0.0.1 #%d: %v", i, err)
		}
	}
}

func TestPeerCheckIsAPath(t *testing.T) {
	clk := clock.NewFake(t0)
	ub, sink := listenUDP(t), listenUDP(t)
	target := listenTCP(t)
	cfg := baseConfig(t, "b", "a", clk, ub, PathConfig{Name: "p1", Address: sink.LocalAddr().String()})
	cfg.Checks = []CheckConfig{{Name: "web", Type: "tcp", Target: target.Addr().String(), Interval: iv, Timeout: iv / 2, Misses: 2}}
	b := mustNew(t, cfg)
	b.preUDP = ub
	rb := record(b)
	start(t, b)

	alive := rb.wait(t, "peer alive through the check", kind(EventPeerAlive))
	// A check says the peer answers, not what its role is: no state (a
	// zero PeerInfo would read as a starting peer of priority 0).
	if alive.Path != "web" || alive.Info != (role.PeerInfo{}) {
		t.Errorf("PeerAlive = %+v, want no peer state", alive)
	}
	if st := status(b, "web"); !st.Up || st.Kind != KindTCP || st.Received != 1 {
		t.Fatalf("check status %+v", st)
	}

	target.Close()
	probe := func() {
		t.Helper()
		before := status(b, "web").Sent
		clk.Advance(iv)
		eventually(t, "a probe", func() bool { return status(b, "web").Sent > before })
	}
	probe()
	if st := b.Status(); !st.Alive || !status(b, "web").Up {
		t.Fatal("down after one failure with misses=2")
	}
	probe()
	rb.wait(t, "PathDown web", pathEvent(EventPathDown, "web"))
	dead := rb.wait(t, "PeerDead", kind(EventPeerDead))
	if dead.Gone {
		t.Error("PeerDead from checks has Gone set")
	}
	if st := status(b, "web"); st.Up || st.LastError == "" {
		t.Errorf("check status after failures: %+v", st)
	}
}
