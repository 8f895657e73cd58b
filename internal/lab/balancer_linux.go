package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// BalancerEvent is a change the emulated load balancer saw or made.
type BalancerEvent struct {
	Time    time.Time
	Node    int  // appliance index; -1 for "no healthy appliance"
	Healthy bool // for probe events: the probe's new verdict
	Steer   bool // true: traffic was steered to Node (or dropped when Node is -1)
}

// Balancer behaves like a cloud load balancer in front of the pair: from
// the client namespace it polls both appliances' HTTP probe and steers the
// client's and the server's routes to the one that answers 200.
type Balancer struct {
	pair   *Pair
	every  time.Duration
	log    *slog.Logger
	client *http.Client

	mu      sync.Mutex
	healthy [2]bool
	target  int
	events  []BalancerEvent
}

// NewBalancer returns a balancer polling every interval (such as 20ms).
// Traffic initially goes via nva-a, as NewPair routes it.
func NewBalancer(p *Pair, every time.Duration, log *slog.Logger) *Balancer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{DialContext: p.Client.DialContext, DisableKeepAlives: true}
	return &Balancer{
		pair:   p,
		every:  every,
		log:    log.With("component", "balancer"),
		client: &http.Client{Transport: tr, Timeout: 4 * every},
		target: 0,
	}
}

// Probe asks appliance i's probe responder once and reports whether it
// answered 200.
func (b *Balancer) Probe(ctx context.Context, i int) bool {
	url := fmt.Sprintf("http://%s:%d/", FrontAddr(i), ProbePort)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Run polls and steers until ctx ends.
func (b *Balancer) Run(ctx context.Context) {
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		var res [2]bool
		for i := range 2 {
			wg.Go(func() { res[i] = b.Probe(ctx, i) })
		}
		wg.Wait()
		b.update(time.Now(), res)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Balancer) update(now time.Time, res [2]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range 2 {
		if res[i] != b.healthy[i] {
			b.events = append(b.events, BalancerEvent{Time: now, Node: i, Healthy: res[i]})
		}
	}
	b.healthy = res
	want := b.target
	switch {
	case b.target >= 0 && res[b.target]:
		// keep the current backend while it is healthy
	case res[0]:
		want = 0
	case res[1]:
		want = 1
	default:
		want = -1
	}
	if want == b.target {
		return
	}
	var err error
	if want < 0 {
		err = b.pair.Client.DelRoute(BackNet)
	} else {
		err = b.pair.Steer(want)
	}
	if err != nil {
		b.log.Warn("steering failed", "to", want, "err", err)
		return
	}
	b.target = want
	b.events = append(b.events, BalancerEvent{Time: now, Node: want, Steer: true})
}

// Healthy returns the last probe verdicts of both appliances.
func (b *Balancer) Healthy() [2]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.healthy
}

// Target is the appliance traffic currently goes to; -1 when none.
func (b *Balancer) Target() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.target
}

// Events returns what the balancer saw and did so far.
func (b *Balancer) Events() []BalancerEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BalancerEvent(nil), b.events...)
}

// Echo is a UDP echo server.
type Echo struct{ pc net.PacketConn }

// StartEcho answers every IPv4 datagram sent to addr in h's namespace with
// the same bytes until closed.
func StartEcho(h *Host, addr string) (*Echo, error) {
	return StartUDPServer(h, "udp4", addr, func(req []byte) []byte { return req })
}

// StartUDPServer answers every datagram sent to addr (network udp, udp4 or
// udp6) in h's namespace with answer(request) until closed; answer may
// return its argument, which is only valid during the call, or nil to send
// nothing.
func StartUDPServer(h *Host, network, addr string, answer func(req []byte) []byte) (*Echo, error) {
	pc, err := h.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if a := answer(buf[:n]); a != nil {
				_, _ = pc.WriteTo(a, from)
			}
		}
	}()
	return &Echo{pc: pc}, nil
}

// Close stops the echo server.
func (e *Echo) Close() error { return e.pc.Close() }

// Answer is one answered request of Traffic.
type Answer struct {
	Seq            uint64
	Sent, Received time.Time
}

// Traffic sends numbered UDP requests from a host to an echo server at a
// fixed rate and records which were answered.
type Traffic struct {
	pc     net.PacketConn
	target *net.UDPAddr
	every  time.Duration

	mu      sync.Mutex
	sent    []time.Time // by sequence number
	answers []Answer
}

// NewTraffic opens the sending socket in from's namespace.
func NewTraffic(from *Host, target string, every time.Duration) (*Traffic, error) {
	ua, err := net.ResolveUDPAddr("udp4", target)
	if err != nil {
		return nil, fmt.Errorf("resolving traffic target %s: %w", target, err)
	}
	pc, err := from.ListenPacket("udp4", ":0")
	if err != nil {
		return nil, err
	}
	return &Traffic{pc: pc, target: ua, every: every}, nil
}

// Run sends and receives until ctx ends, then closes the socket.
func (t *Traffic) Run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		t.pc.Close()
	}()
	go t.receive()
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	var buf [8]byte
	for seq := uint64(0); ; seq++ {
		binary.BigEndian.PutUint64(buf[:], seq)
		t.mu.Lock()
		t.sent = append(t.sent, time.Now())
		t.mu.Unlock()
		// Errors (no route while no appliance is healthy) count as losses.
		_, _ = t.pc.WriteTo(buf[:], t.target)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *Traffic) receive() {
	buf := make([]byte, 64)
	for {
		n, _, err := t.pc.ReadFrom(buf)
		if err != nil {
			if errIsClosed(err) {
				return
			}
			continue // ICMP errors surface here; keep listening
		}
		now := time.Now()
		if n != 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(buf[:8])
		t.mu.Lock()
		if seq < uint64(len(t.sent)) {
			t.answers = append(t.answers, Answer{Seq: seq, Sent: t.sent[seq], Received: now})
		}
		t.mu.Unlock()
	}
}

// Stats returns how many requests were sent and the answers so far.
func (t *Traffic) Stats() (sent int, answers []Answer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sent), append([]Answer(nil), t.answers...)
}

// SentSince counts the requests sent at or after since.
func (t *Traffic) SentSince(since time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.sent {
		if !s.Before(since) {
			n++
		}
	}
	return n
}

// TCPEcho is a TCP echo server on a lab host.
type TCPEcho struct {
	ln   net.Listener
	mu   sync.Mutex
	open []net.Conn
	wg   sync.WaitGroup
}

// StartTCPEcho serves TCP echo on addr inside h.
func StartTCPEcho(h *Host, addr string) (*TCPEcho, error) {
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	e := &TCPEcho{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.open = append(e.open, c)
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return e, nil
}

// Close stops the server and closes every connection: those whose client
// vanished behind a failover never see a FIN.
func (e *TCPEcho) Close() error {
	err := e.ln.Close()
	e.mu.Lock()
	for _, c := range e.open {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return err
}
