// Package probe answers the cloud load balancer's health probe so that
// the load balancer sends traffic only to the active node: in http mode
// the listener is always open and answers 200 "<node> is active" on the
// active node and 503 "<node> is <state>" elsewhere; in tcp mode the port
// accepts connections only while the node is active. It records who
// probes and when, so that status can say "unconnected" when no load
// balancer has probed for a while.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
)

// Defaults for zero fields of Config.
const (
	DefaultListen           = ":8444"
	DefaultUnconnectedAfter = 30 * time.Second
)

// Modes.
const (
	ModeHTTP = "http"
	ModeTCP  = "tcp"
)

// tcpIdle bounds how long an accepted tcp-mode probe connection is kept.
const tcpIdle = 30 * time.Second

var _ action.Action = (*Responder)(nil)

// Stats describes the probes received.
type Stats struct {
	LastProbe  time.Time // zero when none arrived
	LastSource string    // IP address of the last prober
	Count200   uint64    // probes answered as active (tcp mode: accepted)
	Count503   uint64    // probes answered as not active
	Connected  bool      // a probe arrived within UnconnectedAfter
	Active     bool
	Listening  bool
}

// Responder is the probe action. Create it with New.
type Responder struct {
	node             string
	mode             string
	listen           string
	unconnectedAfter time.Duration
	clk              clock.Clock
	log              *slog.Logger

	mu         sync.Mutex
	active     bool
	guard      func() bool // nil, or whether the node may still answer as active
	state      string      // word used in the body when not active
	cur        *listener
	bindAddr   string // address to (re)bind: listen with port 0 resolved
	closed     bool
	lastProbe  time.Time
	lastSource string
	count200   uint64
	count503   uint64
	wg         sync.WaitGroup
}

// listener is one bound socket and what serves it.
type listener struct {
	ln    net.Listener
	srv   *http.Server // http mode
	conns map[net.Conn]struct{}
	done  chan struct{} // closed when the serving goroutine returns
}

// New returns a responder for node configured by cfg. It does not bind
// anything: call Start (http mode) or Activate (tcp mode).
func New(cfg Config, node string, clk clock.Clock, log *slog.Logger) (*Responder, error) {
	mode := cfg.Mode
	if mode == "" {
		mode = ModeHTTP
	}
	if mode != ModeHTTP && mode != ModeTCP {
		return nil, fmt.Errorf("building probe responder: mode %q (want http or tcp)", mode)
	}
	if node == "" {
		return nil, errors.New("building probe responder: empty node name")
	}
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return nil, fmt.Errorf("building probe responder: listen address %q: %w", listen, err)
	}
	after := cfg.UnconnectedAfter
	if after <= 0 {
		after = DefaultUnconnectedAfter
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Responder{
		node:             node,
		mode:             mode,
		listen:           listen,
		bindAddr:         listen,
		unconnectedAfter: after,
		clk:              clk,
		log:              log.With("component", "probe", "mode", mode),
		state:            "init",
	}, nil
}

// Name is "probe".
func (r *Responder) Name() string { return "probe" }

// Start binds the listener in http mode, failing fast when the port is
// taken, and closes everything when ctx is done. In tcp mode it only
// arranges the shutdown: the port opens on Activate.
func (r *Responder) Start(ctx context.Context) error {
	if r.mode == ModeHTTP {
		r.mu.Lock()
		err := r.ensureListenerLocked()
		r.mu.Unlock()
		if err != nil {
			return err
		}
	}
	go func() {
		<-ctx.Done()
		r.Close()
	}()
	return nil
}

// Addr is the bound address, nil when nothing listens.
func (r *Responder) Addr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return nil
	}
	return r.cur.ln.Addr()
}

// SetState sets the word the body uses while not active ("standby",
// "fault", "maintenance", ...); it is lower-cased.
func (r *Responder) SetState(state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = strings.ToLower(strings.TrimSpace(state))
}

// Activate makes the probe answer healthy: 200 in http mode, an open
// port in tcp mode.
func (r *Responder) Activate(ctx context.Context, t action.Takeover) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("activating probe responder: closed")
	}
	if err := r.ensureListenerLocked(); err != nil {
		return err
	}
	if !r.active {
		r.log.Info("probe answers active", "term", t.Term, "reason", t.Reason)
	}
	r.active = true
	return nil
}

// Deactivate makes the probe answer unhealthy: 503 in http mode; in tcp
// mode the port is closed, with every accepted connection.
func (r *Responder) Deactivate(ctx context.Context, t action.Takeover) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active {
		r.log.Info("probe answers not active", "term", t.Term, "reason", t.Reason, "state", r.state)
	}
	r.active = false
	if r.mode == ModeTCP {
		r.closeListenerLocked()
	}
	return nil
}

// Verify makes the answer match active and reopens a listener that was
// lost (or closes the tcp-mode port of an inactive node).
func (r *Responder) Verify(ctx context.Context, active bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("verifying probe responder: closed")
	}
	if r.active != active {
		r.log.Warn("probe answer drifted; repairing", "was_active", r.active, "active", active)
		r.active = active
	}
	if r.mode == ModeHTTP || active {
		if r.cur == nil {
			r.log.Warn("probe listener lost; reopening", "listen", r.bindAddr)
		}
		return r.ensureListenerLocked()
	}
	r.closeListenerLocked()
	return nil
}

// Connected reports whether a probe arrived within UnconnectedAfter
// before now. A node nobody probes is "unconnected": the load balancer is
// missing or misconfigured.
func (r *Responder) Connected(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connectedLocked(now)
}

func (r *Responder) connectedLocked(now time.Time) bool {
	return !r.lastProbe.IsZero() && now.Sub(r.lastProbe) < r.unconnectedAfter
}

// Stats returns the probe counters.
func (r *Responder) Stats() Stats {
	now := r.clk.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{
		LastProbe:  r.lastProbe,
		LastSource: r.lastSource,
		Count200:   r.count200,
		Count503:   r.count503,
		Connected:  r.connectedLocked(now),
		Active:     r.active,
		Listening:  r.cur != nil,
	}
}

// Close closes the listener and every connection and waits for the
// serving goroutines. The responder cannot be used afterwards.
func (r *Responder) Close() error {
	r.mu.Lock()
	r.closed = true
	r.closeListenerLocked()
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

func (r *Responder) ensureListenerLocked() error {
	if r.closed {
		return errors.New("opening probe listener: responder closed")
	}
	if r.cur != nil {
		return nil
	}
	ln, err := net.Listen("tcp", r.bindAddr)
	if err != nil {
		return fmt.Errorf("binding probe listener %s: %w", r.bindAddr, err)
	}
	// Keep the port the kernel picked for ":0", so that a reopened
	// listener is where the load balancer (or test) looks.
	if host, port, _ := net.SplitHostPort(r.bindAddr); port == "0" {
		_, got, _ := net.SplitHostPort(ln.Addr().String())
		r.bindAddr = net.JoinHostPort(host, got)
	}
	l := &listener{ln: ln, done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	r.cur = l
	r.wg.Add(1)
	if r.mode == ModeHTTP {
		l.srv = &http.Server{
			Handler:           r,
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       tcpIdle,
			ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		}
		go r.serveHTTP(l)
	} else {
		go r.serveTCP(l)
	}
	r.log.Info("probe listener open", "addr", ln.Addr().String())
	return nil
}

func (r *Responder) closeListenerLocked() {
	l := r.cur
	if l == nil {
		return
	}
	r.cur = nil
	if l.srv != nil {
		l.srv.Close() // closes the listener and every connection
	} else {
		l.ln.Close()
		for c := range l.conns {
			c.Close()
		}
	}
	r.log.Info("probe listener closed", "addr", l.ln.Addr().String())
}

// lost is called by a serving goroutine whose listener failed.
func (r *Responder) lost(l *listener, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != l {
		return // closed on purpose
	}
	r.log.Error("probe listener failed", "addr", l.ln.Addr().String(), "err", err)
	r.closeListenerLocked()
}

func (r *Responder) serveHTTP(l *listener) {
	defer r.wg.Done()
	defer close(l.done)
	err := l.srv.Serve(l.ln)
	if !errors.Is(err, http.ErrServerClosed) {
		r.lost(l, err)
	}
}

func (r *Responder) serveTCP(l *listener) {
	defer r.wg.Done()
	defer close(l.done)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			r.lost(l, err)
			return
		}
		r.mu.Lock()
		if r.cur != l {
			r.mu.Unlock()
			c.Close()
			return
		}
		if r.guard != nil && !r.guard() {
			r.recordLocked(c.RemoteAddr().String(), http.StatusServiceUnavailable)
			r.mu.Unlock()
			c.Close()
			continue
		}
		l.conns[c] = struct{}{}
		r.recordLocked(c.RemoteAddr().String(), http.StatusOK)
		r.wg.Add(1)
		r.mu.Unlock()
		go r.holdTCP(l, c)
	}
}

// holdTCP keeps a tcp-mode probe connection until the prober closes it,
// it idles too long, or the port is closed.
func (r *Responder) holdTCP(l *listener, c net.Conn) {
	defer r.wg.Done()
	c.SetDeadline(time.Now().Add(tcpIdle))
	io.Copy(io.Discard, io.LimitReader(c, 4096))
	c.Close()
	r.mu.Lock()
	delete(l.conns, c)
	r.mu.Unlock()
}

// SetGuard installs a check made on every probe while active: when it
// says no, the probe is answered as not active. With a witness the daemon
// passes "the lease deadline has not passed", so a node that resumes after
// a freeze longer than its lease never answers 200 before it has stepped
// down. guard must not block.
func (r *Responder) SetGuard(guard func() bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.guard = guard
}

// ServeHTTP answers a probe: any method, any path.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	code, word := http.StatusServiceUnavailable, r.state
	if r.active && (r.guard == nil || r.guard()) {
		code, word = http.StatusOK, "active"
	}
	r.recordLocked(req.RemoteAddr, code)
	r.mu.Unlock()
	body := r.node + " is " + word + "\n"
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	io.WriteString(w, body)
}

func (r *Responder) recordLocked(remote string, code int) {
	now := r.clk.Now()
	src := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		src = host
	}
	if !r.connectedLocked(now) {
		r.log.Info("load balancer probes arriving", "source", src, "code", code)
	}
	r.lastProbe, r.lastSource = now, src
	if code == http.StatusOK {
		r.count200++
	} else {
		r.count503++
	}
}
