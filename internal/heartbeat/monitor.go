package heartbeat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/redact"
	"github.com/batonha/baton/internal/role"
)

// Limits and defaults.
const (
	MinInterval         = 10 * time.Millisecond
	DefaultReplayWindow = 1024
	MinReplayWindow     = 32
	MaxReplayWindow     = 1 << 16

	defaultCheckInterval = time.Second
	defaultCheckTimeout  = 500 * time.Millisecond
	eventBuffer          = 64
	maxInbound           = 8
	// sentMemory is how many of its own latest send times a monitor
	// remembers to recognise a peer's echo (6.4 s at 100 ms).
	sentMemory = 64
)

// Path kinds, as reported in PathStatus.Kind.
const (
	KindUDP     = "udp"
	KindChannel = "channel"
	KindICMP    = "icmp"
	KindTCP     = "tcp"
	KindHTTP    = "http"
)

// PathConfig is one UDP path to the peer. Both nodes name a path alike.
type PathConfig struct {
	Name    string
	Address string // the peer's UDP host:port on this path
	Source  string // optional local IP to send from
}

// ChannelConfig is the TCP peer channel.
type ChannelConfig struct {
	Listen  string // our TCP host:port
	Address string // the peer's TCP host:port
}

// CheckConfig is an extra probe of the peer that counts as a path.
type CheckConfig struct {
	Name     string
	Type     string        // icmp|tcp|http
	Target   string        // icmp: IP; tcp: host:port; http: http(s) URL
	Interval time.Duration // default 1s
	Timeout  time.Duration // default 500ms (or Interval/2 when shorter); must be < Interval
	Misses   int           // consecutive failures before down; default Config.Misses
	Insecure bool          // https: skip certificate verification
}

// Config configures a Monitor.
type Config struct {
	Node, Peer   string
	Interval     time.Duration // >= MinInterval
	Misses       int           // >= 1: a path is down after Misses*Interval of silence
	Listen       string        // UDP listen host:port
	Keys         [][]byte      // see LoadKeys; signs with Keys[0]
	ReplayWindow int           // 0 means DefaultReplayWindow
	Paths        []PathConfig  // at least one, unless Peer is empty (no peer)
	Channel      *ChannelConfig
	Checks       []CheckConfig
	Clock        clock.Clock  // default clock.Real
	Logger       *slog.Logger // default discards
	// Epoch names this run in every message; it must grow from one run
	// to the next whatever the wall clock does (the daemon persists a
	// restart counter). 0 means the clock's unix nanoseconds at Run.
	Epoch uint64
}

// Local is what this node advertises in its heartbeats.
type Local struct {
	State       role.State
	Term        uint64
	Priority    int // 0..255 on the wire
	Healthy     bool
	Maintenance bool
	Handover    bool
	Preempt     bool
	Yielding    bool
}

// Status is a snapshot of the monitor.
type Status struct {
	Alive     bool
	Gone      bool
	Paths     []PathStatus
	Drops     map[string]uint64 // dropped messages by reason
	Sent      uint64            // messages sent, all paths
	Received  uint64            // valid messages received, all paths
	Peer      *role.PeerInfo    // last heard, nil before the first message
	LastHeard time.Time
	// EventsCoalesced counts Message events replaced by a newer one
	// because the consumer of Events lagged.
	EventsCoalesced uint64
}

// PathStatus is the state of one path.
type PathStatus struct {
	Name      string
	Kind      string // udp|channel|icmp|tcp|http
	Up        bool
	RTT       time.Duration // last measured round trip (probe time for checks)
	LastHeard time.Time     // last valid message, or last successful probe
	Sent      uint64        // messages sent, or probes run
	Received  uint64        // valid messages received, or probes passed
	LastError string
}

type pathState struct {
	name, kind string
	// udp
	address, source string
	addr            *net.UDPAddr
	addrPort        netip.AddrPort // addr, for sending without allocating
	conn            net.PacketConn
	buf             []byte // the message being sent (guarded by Monitor.sendMu)
	// check
	check *CheckConfig
	fails int

	up             bool
	rtt            time.Duration
	lastHeard      time.Time
	sent, received uint64
	lastErr        string
	deadline       time.Time
	// timer fires at the deadline or earlier: a message moves only the
	// deadline, and expire re-arms the timer for what is left (no timer
	// reset per message).
	timer clock.Timer
	armed bool
	// echo: the peer's last sent time on this path and when we got it
	peerSent   int64
	peerSentAt time.Time
}

func (p *pathState) heartbeat() bool { return p.kind == KindUDP || p.kind == KindChannel }

// Monitor watches the peer. Create it with New and start it with Run.
type Monitor struct {
	cfg    Config
	clk    clock.Clock
	log    *slog.Logger
	q      *eventQueue
	events chan Event
	ready  chan struct{} // closed once Run has bound its sockets and started

	// Test hooks, set before Run.
	preUDP    net.PacketConn // used instead of binding Listen
	preLn     net.Listener   // used instead of binding Channel.Listen
	noLeaving bool           // exit without the Leaving message, like a killed process

	wg sync.WaitGroup

	// sendMu serializes send: it reuses the paths' buffers, outs and
	// sign. Lock it before mu.
	sendMu sync.Mutex
	outs   []outgoing
	sign   hash.Hash

	mu        sync.Mutex
	started   bool
	running   bool // between binding and shutdown; gates every state change
	local     Local
	epoch     uint64
	seq       uint64
	paths     []*pathState
	byName    map[string]*pathState
	alive     bool
	gone      bool
	goneEpoch uint64
	peer      *role.PeerInfo
	// delivered is the peer state last handed out in an event: a message
	// that repeats it is not an event (the consumer wakes only for news).
	delivered *role.PeerInfo
	lastHeard time.Time
	// acked is the newest of our own send times that the peer echoed on
	// any heartbeat path: the peer received that message, so none of its
	// heartbeat paths can time out before acked + Misses*Interval.
	acked  time.Time
	replay *replayWindow
	// sentTimes are this run's latest send times (a ring, next at
	// sentNext): a peer message whose echo is one of them was sent after
	// the peer heard this run, so it cannot be a capture replayed from
	// before this node started.
	sentTimes [sentMemory]int64
	sentNext  int
	// trusted is the peer epoch proven live by such an echo; messages of
	// another epoch count for nothing until one of them echoes us.
	trusted      uint64
	trustedKnown bool
	// proofEpoch and proofAt: the last immediate answer to a message of
	// an unproven run (at most one per run and interval).
	proofEpoch uint64
	proofAt    time.Time
	drops      map[string]uint64
	sent       uint64
	received   uint64
	tick       clock.Timer
	out        *outConn
	inbound    map[*inConn]struct{}
	currentIn  *inConn // the inbound connection that carried the last valid message
}

// New validates cfg and returns a Monitor. It binds nothing.
func New(cfg Config) (*Monitor, error) {
	if err := validate(&cfg); err != nil {
		return nil, fmt.Errorf("heartbeat config: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReplayWindow == 0 {
		cfg.ReplayWindow = DefaultReplayWindow
	}
	m := &Monitor{
		cfg:     cfg,
		clk:     cfg.Clock,
		log:     cfg.Logger.With("component", "heartbeat", "peer", cfg.Peer),
		q:       newEventQueue(),
		events:  make(chan Event, eventBuffer),
		ready:   make(chan struct{}),
		byName:  make(map[string]*pathState),
		replay:  newReplayWindow(cfg.ReplayWindow),
		drops:   make(map[string]uint64),
		inbound: make(map[*inConn]struct{}),
	}
	add := func(p *pathState) {
		m.paths = append(m.paths, p)
		m.byName[p.name] = p
	}
	for _, p := range cfg.Paths {
		add(&pathState{name: p.Name, kind: KindUDP, address: p.Address, source: p.Source})
	}
	if cfg.Channel != nil {
		add(&pathState{name: ChannelPath, kind: KindChannel})
	}
	for i := range cfg.Checks {
		c := &cfg.Checks[i]
		add(&pathState{name: c.Name, kind: c.Type, check: c})
	}
	return m, nil
}

func validate(c *Config) error {
	if !validName(c.Node, MaxNodeName) {
		return fmt.Errorf("node name %q must be 1..%d printable characters", c.Node, MaxNodeName)
	}
	if c.Peer != "" && !validName(c.Peer, MaxNodeName) {
		return fmt.Errorf("peer name %q must be 1..%d printable characters", c.Peer, MaxNodeName)
	}
	if c.Node == c.Peer {
		return fmt.Errorf("node and peer are both named %q", c.Node)
	}
	if c.Interval < MinInterval {
		return fmt.Errorf("interval %v is below the minimum %v", c.Interval, MinInterval)
	}
	if c.Misses < 1 {
		return fmt.Errorf("misses %d must be at least 1", c.Misses)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	if len(c.Keys) == 0 {
		return errors.New("no heartbeat key")
	}
	for i, k := range c.Keys {
		if len(k) < MinKeySize {
			return fmt.Errorf("key %d is %d bytes, need at least %d", i, len(k), MinKeySize)
		}
	}
	if c.ReplayWindow != 0 && (c.ReplayWindow < MinReplayWindow || c.ReplayWindow > MaxReplayWindow) {
		return fmt.Errorf("replay window %d out of %d..%d", c.ReplayWindow, MinReplayWindow, MaxReplayWindow)
	}
	// No peer at all (a scale-set node that only announces over BGP):
	// the monitor listens, sends nothing and never hears a peer.
	if len(c.Paths) == 0 && c.Peer != "" {
		return errors.New("no path to the peer")
	}
	names := map[string]bool{}
	unique := func(n string) error {
		if !validName(n, MaxPathName) {
			return fmt.Errorf("path name %q must be 1..%d printable characters", n, MaxPathName)
		}
		if names[n] {
			return fmt.Errorf("path name %q used twice", n)
		}
		names[n] = true
		return nil
	}
	if c.Channel != nil {
		names[ChannelPath] = true
		if _, _, err := net.SplitHostPort(c.Channel.Listen); err != nil {
			return fmt.Errorf("channel listen address %q: %w", c.Channel.Listen, err)
		}
		if _, _, err := net.SplitHostPort(c.Channel.Address); err != nil {
			return fmt.Errorf("channel peer address %q: %w", c.Channel.Address, err)
		}
	}
	for _, p := range c.Paths {
		if p.Name == ChannelPath {
			return fmt.Errorf("path name %q is reserved for the TCP channel", ChannelPath)
		}
		if err := unique(p.Name); err != nil {
			return err
		}
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			return fmt.Errorf("path %s: address %q: %w", p.Name, p.Address, err)
		}
		if p.Source != "" && net.ParseIP(p.Source) == nil {
			return fmt.Errorf("path %s: source %q is not an IP address", p.Name, p.Source)
		}
	}
	c.Checks = append([]CheckConfig(nil), c.Checks...) // defaults are filled in below
	for i := range c.Checks {
		ch := &c.Checks[i]
		if ch.Name == ChannelPath {
			return fmt.Errorf("check name %q is reserved for the TCP channel", ChannelPath)
		}
		if err := unique(ch.Name); err != nil {
			return err
		}
		if ch.Interval == 0 {
			ch.Interval = defaultCheckInterval
		}
		if ch.Timeout == 0 {
			ch.Timeout = min(defaultCheckTimeout, ch.Interval/2)
		}
		if ch.Misses == 0 {
			ch.Misses = c.Misses
		}
		if ch.Interval < MinInterval || ch.Timeout <= 0 || ch.Timeout >= ch.Interval || ch.Misses < 1 {
			return fmt.Errorf("check %s: need interval >= %v, 0 < timeout < interval and misses >= 1", ch.Name, MinInterval)
		}
		switch ch.Type {
		case KindICMP:
			if net.ParseIP(ch.Target) == nil {
				return fmt.Errorf("check %s: icmp target %q is not an IP address", ch.Name, ch.Target)
			}
		case KindTCP:
			if _, _, err := net.SplitHostPort(ch.Target); err != nil {
				return fmt.Errorf("check %s: tcp target %q: %w", ch.Name, ch.Target, err)
			}
		case KindHTTP:
			u, err := url.Parse(ch.Target)
			if err != nil {
				return fmt.Errorf("check %s: http target: %w", ch.Name, redact.Err(err))
			}
			if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("check %s: http target %q must be an http or https URL", ch.Name, redact.URL(ch.Target))
			}
		default:
			return fmt.Errorf("check %s: unknown type %q (want icmp, tcp or http)", ch.Name, ch.Type)
		}
	}
	return nil
}

// Events delivers what the monitor learns. PeerAlive, PeerDead, PathUp and
// PathDown are never dropped; Message events are coalesced when the reader
// lags. The channel is closed when Run returns.
func (m *Monitor) Events() <-chan Event { return m.events }

// SetLocal sets what this node advertises from the next message on.
func (m *Monitor) SetLocal(p Local) {
	m.mu.Lock()
	m.local = p
	m.mu.Unlock()
}

// Acked returns the newest of this node's send times that the peer says it
// received (the echo in its heartbeats), zero before the first. The peer
// cannot find this node dead (every heartbeat path silent) before
// Acked() + Misses*Interval on its clock, unless this process goes away.
func (m *Monitor) Acked() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acked
}

// SendNow sends one message on every heartbeat path at once. It does
// nothing unless Run is running.
func (m *Monitor) SendNow() { m.send(false, false) }

// Status returns a snapshot.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{
		Alive:           m.alive,
		Gone:            m.gone,
		Drops:           make(map[string]uint64, len(m.drops)),
		Sent:            m.sent,
		Received:        m.received,
		LastHeard:       m.lastHeard,
		EventsCoalesced: m.q.dropped(),
	}
	for k, v := range m.drops {
		s.Drops[k] = v
	}
	if m.peer != nil {
		p := *m.peer
		s.Peer = &p
	}
	for _, p := range m.paths {
		s.Paths = append(s.Paths, PathStatus{
			Name: p.name, Kind: p.kind, Up: p.up, RTT: p.rtt, LastHeard: p.lastHeard,
			Sent: p.sent, Received: p.received, LastError: p.lastErr,
		})
	}
	return s
}

// Run binds the sockets, then sends every Interval on every path and the
// channel, receives, and runs the peer checks until ctx is done. Before
// returning it sends a message with the Leaving flag on every path. It
// returns an error if it cannot bind or resolve, nil after ctx is done.
// Run may be called once.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("heartbeat monitor: Run called twice")
	}
	m.started = true
	m.mu.Unlock()

	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			_ = c()
		}
	}
	udp := m.preUDP
	if udp == nil {
		var lc net.ListenConfig
		var err error
		if udp, err = lc.ListenPacket(ctx, "udp", m.cfg.Listen); err != nil {
			close(m.events)
			return fmt.Errorf("binding heartbeat socket %s: %w", m.cfg.Listen, err)
		}
	}
	closers = append(closers, udp.Close)
	for _, p := range m.paths {
		if p.kind != KindUDP {
			continue
		}
		addr, err := net.ResolveUDPAddr("udp", p.address)
		if err != nil {
			closeAll()
			close(m.events)
			return fmt.Errorf("resolving heartbeat path %s address %s: %w", p.name, p.address, err)
		}
		ap := addr.AddrPort()
		p.addr, p.addrPort, p.conn = addr, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), udp
		if p.source != "" {
			c, err := net.ListenPacket("udp", net.JoinHostPort(p.source, "0"))
			if err != nil {
				closeAll()
				close(m.events)
				return fmt.Errorf("binding heartbeat path %s to source %s: %w", p.name, p.source, err)
			}
			closers = append(closers, c.Close)
			p.conn = c
		}
	}
	var ln net.Listener
	if m.cfg.Channel != nil {
		ln = m.preLn
		if ln == nil {
			lc := net.ListenConfig{KeepAliveConfig: m.keepAlive()}
			var err error
			if ln, err = lc.Listen(ctx, "tcp", m.cfg.Channel.Listen); err != nil {
				closeAll()
				close(m.events)
				return fmt.Errorf("binding peer channel listener %s: %w", m.cfg.Channel.Listen, err)
			}
		}
		closers = append(closers, ln.Close)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pumpCtx, stopPump := context.WithCancel(context.Background())
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		m.q.pump(pumpCtx, m.events)
	}()

	m.mu.Lock()
	m.epoch = m.cfg.Epoch
	if m.epoch == 0 {
		m.epoch = uint64(m.clk.Now().UnixNano())
	}
	m.running = true
	m.mu.Unlock()
	m.log.Info("heartbeat started", "listen", udp.LocalAddr().String(), "epoch", m.epoch)

	m.wg.Go(func() { m.readUDP(udp) })
	if ln != nil {
		m.wg.Go(func() { m.acceptLoop(ctx, ln) })
		m.wg.Go(func() { m.dialLoop(ctx) })
	}
	for _, p := range m.paths {
		if p.check != nil {
			m.wg.Go(func() { m.checkLoop(ctx, p) })
		}
	}
	m.send(false, false)
	m.mu.Lock()
	m.tick = m.clk.AfterFunc(m.cfg.Interval, m.onTick)
	m.mu.Unlock()
	close(m.ready)

	<-ctx.Done()

	m.mu.Lock()
	m.tick.Stop()
	m.mu.Unlock()
	if !m.noLeaving {
		m.send(true, false)
	}
	m.mu.Lock()
	m.running = false
	for _, p := range m.paths {
		if p.timer != nil {
			p.timer.Stop()
		}
	}
	out := m.out
	m.out = nil
	for ic := range m.inbound {
		_ = ic.c.Close()
	}
	m.mu.Unlock()
	if out != nil {
		_ = out.c.Close()
	}
	closeAll()
	m.wg.Wait()
	stopPump()
	<-pumpDone
	m.log.Info("heartbeat stopped")
	return nil
}

func (m *Monitor) onTick() {
	m.send(false, false)
	m.mu.Lock()
	if m.running {
		m.tick.Reset(m.cfg.Interval)
	}
	m.mu.Unlock()
}

// sleep waits d on the injected clock; false when ctx is done first.
func (m *Monitor) sleep(ctx context.Context, d time.Duration) bool {
	return clock.Sleep(ctx, m.clk, d) == nil
}

type outgoing struct {
	p *pathState
	b []byte
}

// send signs and sends one message on every UDP path and on the channel
// (only on the channel when channelOnly).
func (m *Monitor) send(leaving, channelOnly bool) {
	m.sendMu.Lock()
	defer m.sendMu.Unlock()
	m.mu.Lock()
	if !m.running {
		m.mu.Unlock()
		return
	}
	now := m.clk.Now()
	outs := m.outs[:0]
	for _, p := range m.paths {
		if !p.heartbeat() || (channelOnly && p.kind != KindChannel) || (p.kind == KindChannel && m.out == nil) {
			continue
		}
		b, err := m.encodeLocked(p, now, leaving)
		if err != nil {
			// Only a bug can get here: names and fields are validated in New.
			m.log.Error("encoding heartbeat", "path", p.name, "err", err)
			continue
		}
		outs = append(outs, outgoing{p, b})
	}
	m.outs = outs
	if len(outs) > 0 {
		m.rememberSentLocked(now.UnixNano())
	}
	out := m.out
	m.mu.Unlock()

	for _, o := range outs {
		var err error
		switch c, udp := o.p.conn.(*net.UDPConn); {
		case o.p.kind == KindChannel:
			err = out.write(o.b, m.cfg.Interval)
		case udp:
			_, err = c.WriteToUDPAddrPort(o.b, o.p.addrPort)
		default:
			_, err = o.p.conn.WriteTo(o.b, o.p.addr)
		}
		m.mu.Lock()
		if err != nil {
			o.p.lastErr = fmt.Sprintf("sending on path %s: %v", o.p.name, err)
		} else {
			o.p.sent++
			m.sent++
		}
		m.mu.Unlock()
		if err != nil {
			m.log.Debug("sending heartbeat", "path", o.p.name, "err", err)
		}
	}
}

// rememberSentLocked records one of this run's send times, the values a
// peer's echo can prove it heard this run.
func (m *Monitor) rememberSentLocked(sent int64) {
	last := m.sentNext - 1
	if last < 0 {
		last = sentMemory - 1
	}
	if sent == 0 || m.sentTimes[last] == sent {
		return
	}
	m.sentTimes[m.sentNext] = sent
	m.sentNext = (m.sentNext + 1) % sentMemory
}

// echoesUsLocked reports whether echo is one of this run's latest send
// times.
func (m *Monitor) echoesUsLocked(echo int64) bool {
	if echo == 0 {
		return false
	}
	for _, s := range m.sentTimes {
		if s == echo {
			return true
		}
	}
	return false
}

// encodeLocked signs the next message for p into p's buffer; on the
// channel the buffer starts with the frame's length. Called with sendMu
// and mu held.
func (m *Monitor) encodeLocked(p *pathState, now time.Time, leaving bool) ([]byte, error) {
	m.seq++
	l := m.local
	msg := Message{
		Node:     m.cfg.Node,
		Path:     p.name,
		Epoch:    m.epoch,
		Seq:      m.seq,
		Sent:     now.UnixNano(),
		State:    l.State,
		Term:     l.Term,
		Priority: uint8(min(max(l.Priority, 0), 255)),
	}
	if p.peerSent != 0 {
		msg.Echo = p.peerSent
		msg.EchoDelay = int64(max(now.Sub(p.peerSentAt), 0))
	}
	for _, f := range [...]struct {
		on   bool
		flag Flags
	}{{l.Healthy, FlagHealthy}, {l.Maintenance, FlagMaintenance}, {l.Handover, FlagHandover}, {l.Preempt, FlagPreempt}, {leaving, FlagLeaving}, {l.Yielding, FlagYielding}} {
		if f.on {
			msg.Flags |= f.flag
		}
	}
	if m.sign == nil {
		m.sign = newMACs(m.cfg.Keys[:1]).signer()
	}
	if p.buf == nil {
		p.buf = make([]byte, 0, frameHeader+MaxMessageSize)
	}
	if p.kind != KindChannel {
		return appendEncoded(p.buf[:0], &msg, m.sign)
	}
	b, err := appendEncoded(p.buf[:frameHeader], &msg, m.sign)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(b, uint16(len(b)-frameHeader))
	return b, nil
}

func (m *Monitor) readUDP(conn net.PacketConn) {
	buf := make([]byte, 2048)
	ms, intern := newMACs(m.cfg.Keys), m.internName
	uc, _ := conn.(*net.UDPConn)
	for {
		var n int
		var err error
		if uc != nil {
			n, _, err = uc.ReadFromUDPAddrPort(buf)
		} else {
			n, _, err = conn.ReadFrom(buf)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) || !m.isRunning() {
				return
			}
			m.log.Debug("reading heartbeat socket", "err", err)
			continue
		}
		msg, err := decode(buf[:n], ms, intern)
		if err != nil {
			m.drop(dropReason(err), err)
			continue
		}
		m.handle(msg, KindUDP, nil)
	}
}

// internName returns the configured string for the peer's or a path's
// name, so that decoding a heartbeat allocates nothing; other names are
// copied (and dropped by handle).
func (m *Monitor) internName(b []byte) string {
	if string(b) == m.cfg.Peer {
		return m.cfg.Peer
	}
	if p := m.byName[string(b)]; p != nil {
		return p.name
	}
	return string(b)
}

func (m *Monitor) isRunning() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running
}

func (m *Monitor) drop(reason string, err error) {
	m.mu.Lock()
	m.dropLocked(reason, err)
	m.mu.Unlock()
}

func (m *Monitor) dropLocked(reason string, err error) {
	m.drops[reason]++
	m.log.Debug("dropped heartbeat", "reason", reason, "err", err)
}

func (m *Monitor) pushLocked(e Event) {
	if !m.running {
		return
	}
	m.q.push(e)
}

// handle applies one decoded, authenticated message received on a path of
// the given kind (ic is the inbound connection for the channel). It reports
// whether the message was accepted.
func (m *Monitor) handle(msg Message, kind string, ic *inConn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return false
	}
	if msg.Node != m.cfg.Peer {
		m.dropLocked(DropUnknownSender, fmt.Errorf("message from %q, expecting %q", msg.Node, m.cfg.Peer))
		return false
	}
	p := m.byName[msg.Path]
	if p == nil || p.kind != kind {
		m.dropLocked(DropUnknownPath, fmt.Errorf("message for path %q received over %s", msg.Path, kind))
		return false
	}
	if m.gone && msg.Epoch == m.goneEpoch && (ic == nil || ic.stale) {
		m.dropLocked(DropDeadEpoch, fmt.Errorf("message from the gone process epoch %d", msg.Epoch))
		return false
	}
	switch m.replay.check(msg.Epoch, msg.Seq) {
	case staleEpoch:
		m.dropLocked(DropStaleEpoch, fmt.Errorf("epoch %d older than %d", msg.Epoch, m.replay.epoch))
		return false
	case replayed:
		m.dropLocked(DropReplay, fmt.Errorf("sequence %d of epoch %d seen or too old", msg.Seq, msg.Epoch))
		return false
	}
	now := m.clk.Now()
	if !m.trustedKnown || msg.Epoch != m.trusted {
		// A peer run not yet proven live: it could be a capture
		// replayed while the peer is dead (this node's replay window is
		// new after a restart). Its send time is echoed back at once, so
		// a live peer proves itself with its answer; nothing else
		// changes.
		if !m.echoesUsLocked(msg.Echo) {
			p.peerSent, p.peerSentAt = msg.Sent, now
			m.dropLocked(DropUnechoed, fmt.Errorf("epoch %d has not yet echoed a message of this run", msg.Epoch))
			if msg.Epoch != m.proofEpoch || m.proofAt.IsZero() || now.Before(m.proofAt) || now.Sub(m.proofAt) >= m.cfg.Interval {
				m.proofEpoch, m.proofAt = msg.Epoch, now
				m.wg.Go(func() { m.send(false, false) })
			}
			return false
		}
		m.trusted, m.trustedKnown = msg.Epoch, true
		m.log.Info("peer run proven live by its echo", "path", p.name, "epoch", msg.Epoch)
		// The peer may not have proven this run yet: answer at once
		// rather than at the next interval.
		m.wg.Go(func() { m.send(false, false) })
	}
	if m.gone {
		m.gone = false
		m.log.Info("peer is back", "path", p.name, "epoch", msg.Epoch)
	}
	if ic != nil {
		ic.authenticated = true
		ic.epoch = msg.Epoch
		m.currentIn = ic
	}
	m.received++
	p.received++
	p.lastHeard, m.lastHeard = now, now
	p.peerSent, p.peerSentAt = msg.Sent, now
	if msg.Echo != 0 {
		echo := time.Unix(0, msg.Echo)
		if rtt := now.Sub(echo) - time.Duration(msg.EchoDelay); rtt >= 0 {
			p.rtt = rtt
		}
		// An echo from the future is not one of our send times.
		if echo.After(m.acked) && !echo.After(now) {
			m.acked = echo
		}
	}
	info := msg.Info()
	// The replay window accepts an older sequence number that it has not
	// seen (a TCP backlog or a slow path delivering late), which is right
	// for liveness but not for state: only the newest message says what
	// the peer is now.
	newest := m.replay.newest(msg.Seq)
	if newest {
		if m.peer == nil {
			m.peer = new(role.PeerInfo)
		}
		*m.peer = info
	}
	if msg.Flags&FlagLeaving != 0 {
		m.pushLocked(Event{Kind: EventMessage, Path: p.name, Info: info, Leaving: true, At: now})
		m.goneLocked(msg.Epoch, true, "peer is leaving")
		return true
	}
	p.deadline = now.Add(time.Duration(m.cfg.Misses) * m.cfg.Interval)
	switch {
	case p.timer == nil:
		p.timer = m.clk.AfterFunc(time.Duration(m.cfg.Misses)*m.cfg.Interval, func() { m.expire(p) })
	case !p.armed:
		p.timer.Reset(time.Duration(m.cfg.Misses) * m.cfg.Interval)
	}
	p.armed = true
	if !p.up {
		p.up = true
		p.lastErr = ""
		m.log.Info("path up", "path", p.name)
		m.pushLocked(Event{Kind: EventPathUp, Path: p.name, At: now})
	}
	if !m.alive {
		m.alive = true
		m.log.Info("peer alive", "path", p.name, "reason", "message received")
		ev := Event{Kind: EventPeerAlive, Path: p.name, At: now}
		if newest {
			ev.Info = info
		}
		m.pushLocked(ev)
	}
	if newest && (m.delivered == nil || *m.delivered != info) {
		d := info
		m.delivered = &d
		m.pushLocked(Event{Kind: EventMessage, Path: p.name, Info: info, At: now})
	}
	return true
}

// goneLocked declares the peer process of epoch gone: every heartbeat path
// goes down at once and the peer is dead.
func (m *Monitor) goneLocked(epoch uint64, leaving bool, reason string) {
	now := m.clk.Now()
	m.gone, m.goneEpoch = true, epoch
	for _, p := range m.paths {
		if !p.heartbeat() {
			continue
		}
		p.peerSent = 0
		if p.up {
			p.up = false
			if p.timer != nil {
				p.timer.Stop()
				p.armed = false
			}
			m.pushLocked(Event{Kind: EventPathDown, Path: p.name, At: now})
		}
	}
	for ic := range m.inbound {
		ic.stale = true
	}
	m.currentIn = nil
	m.log.Info("peer gone", "reason", reason, "epoch", epoch)
	if m.alive {
		m.alive = false
		m.delivered = nil
		m.pushLocked(Event{Kind: EventPeerDead, Gone: true, Leaving: leaving, At: now})
	}
}

// expire runs when a path's deadline timer fires.
func (m *Monitor) expire(p *pathState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	if !m.running || !p.up {
		p.armed = false
		return
	}
	if now.Before(p.deadline) {
		p.timer.Reset(p.deadline.Sub(now))
		return
	}
	p.armed = false
	p.up = false
	p.lastErr = fmt.Sprintf("nothing heard for %v", time.Duration(m.cfg.Misses)*m.cfg.Interval)
	m.log.Info("path down", "path", p.name, "reason", "missed heartbeats")
	m.pushLocked(Event{Kind: EventPathDown, Path: p.name, At: now})
	m.deadIfAllDownLocked(now, "every path down")
}

func (m *Monitor) deadIfAllDownLocked(now time.Time, reason string) {
	if !m.alive {
		return
	}
	for _, p := range m.paths {
		if p.up {
			return
		}
	}
	m.alive = false
	m.log.Warn("peer dead", "reason", reason)
	m.delivered = nil
	m.pushLocked(Event{Kind: EventPeerDead, At: now})
}

// checkResult records one peer check probe.
func (m *Monitor) checkResult(p *pathState, took time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return
	}
	now := m.clk.Now()
	p.sent++
	if err == nil {
		p.received++
		p.fails = 0
		p.lastErr = ""
		p.lastHeard = now
		p.rtt = took
		if !p.up {
			p.up = true
			m.log.Info("path up", "path", p.name)
			m.pushLocked(Event{Kind: EventPathUp, Path: p.name, At: now})
			if !m.alive && !m.gone {
				// The peer answers, but says nothing about its role: the
				// event carries no peer state (what was heard before it was
				// lost is stale).
				m.alive = true
				m.log.Info("peer alive", "path", p.name, "reason", "check passed")
				m.pushLocked(Event{Kind: EventPeerAlive, Path: p.name, At: now})
			}
		}
		return
	}
	p.fails++
	p.lastErr = err.Error()
	if p.up && p.fails >= p.check.Misses {
		p.up = false
		m.log.Info("path down", "path", p.name, "reason", err.Error())
		m.pushLocked(Event{Kind: EventPathDown, Path: p.name, At: now})
		m.deadIfAllDownLocked(now, "every path down")
	}
}
