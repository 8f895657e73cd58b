// Package peerlink is the authenticated TCP channel between the two
// appliances that session sync and configuration sync use. Every stream is
// its own mutual-TLS 1.3 connection: each node presents a certificate
// signed by the cluster CA (see `baton keygen`) whose DNS name is its node
// name, and accepts only the peer's. The first frame of a stream names the
// service it is for; after it, both sides exchange typed frames.
//
// Frame format: 4-byte big-endian length of what follows, 1 byte type,
// payload. Length includes the type byte.
package peerlink

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/store"
)

// MaxFrame is the largest frame accepted unless Config.MaxFrame says otherwise.
const MaxFrame = 16 << 20

// frameHello opens a stream and carries the service name.
const frameHello = 0

// Config configures the link.
type Config struct {
	Node, Peer string
	Listen     string // host:port this node accepts streams on
	Address    string // the peer's host:port
	CAFile     string // PEM bundle of trusted cluster CAs (two during rotation)
	CertFile   string // this node's certificate
	KeyFile    string // this node's private key
	MaxFrame   int
	// MaxStreams bounds the inbound streams served at once (default
	// DefaultMaxStreams): a peer opening more, even with a valid
	// certificate, has them closed and counted in Dropped.
	MaxStreams int
	Logger     *slog.Logger
	Clock      clock.Clock // default clock.Real
}

// Bounds of the accept loop: a failing Accept (EMFILE) is retried after
// a backoff growing to acceptBackoffMax; at most maxHandshakes TLS
// handshakes run at once (more connections are closed at once); a
// refused handshake is logged at most once per warnEvery.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	maxHandshakes    = 16
	// DefaultMaxStreams is far above what the pair uses (one stream per
	// service and direction, and `baton sync diff`).
	DefaultMaxStreams = 64
	warnEvery         = 10 * time.Second
)

// Handler serves one inbound stream; the stream closes when it returns.
type Handler func(ctx context.Context, s *Stream)

// Link accepts and dials streams.
type Link struct {
	cfg    Config
	log    *slog.Logger
	server *tls.Config
	client *tls.Config

	mu       sync.Mutex
	handlers map[string]Handler
	ln       net.Listener

	handshakes chan struct{} // a slot per running handshake
	streams    chan struct{} // a slot per inbound stream served
	warnMu     sync.Mutex
	warnedAt   time.Time
	suppressed int // refused handshakes not logged since warnedAt
	dropped    atomic.Uint64
}

// New loads the certificates and returns a link; nothing is bound yet.
func New(cfg Config) (*Link, error) {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = MaxFrame
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	w, err := store.CheckFileMode(cfg.KeyFile, store.Secret)
	if err != nil {
		return nil, fmt.Errorf("peer link key (link.key_file): %w", err)
	}
	if w != "" {
		cfg.Logger.Warn("link.key_file: " + w)
	}
	server, client, err := LoadTLS(cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.Peer)
	if err != nil {
		return nil, err
	}
	return &Link{cfg: cfg, log: cfg.Logger.With("component", "peerlink", "peer", cfg.Peer),
		server: server, client: client, handlers: map[string]Handler{}, handshakes: make(chan struct{}, maxHandshakes),
		streams: make(chan struct{}, cfg.MaxStreams)}, nil
}

// LoadTLS builds the server and client TLS configurations that accept only
// a certificate for peer signed by a CA in caFile.
func LoadTLS(caFile, certFile, keyFile, peer string) (server, client *tls.Config, err error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("cluster CA %s holds no PEM certificate", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("loading node certificate %s and key %s: %w", certFile, keyFile, err)
	}
	checkPeer := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer sent no certificate")
		}
		if err := cs.PeerCertificates[0].VerifyHostname(peer); err != nil {
			return fmt.Errorf("peer certificate is not for %s: %w", peer, err)
		}
		return nil
	}
	server = &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, VerifyConnection: checkPeer,
	}
	client = &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		RootCAs: pool, ServerName: peer, VerifyConnection: checkPeer,
	}
	return server, client, nil
}

// Handle registers the handler for a service. Call before Run.
func (l *Link) Handle(service string, h Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers[service] = h
}

// Listen binds the listener (so a bad address fails at start).
func (l *Link) Listen() error {
	ln, err := net.Listen("tcp", l.cfg.Listen)
	if err != nil {
		return fmt.Errorf("binding peer link %s: %w", l.cfg.Listen, err)
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	return nil
}

// Addr is the bound address.
func (l *Link) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Run accepts streams until ctx ends.
func (l *Link) Run(ctx context.Context) error {
	if l.Addr() == nil {
		if err := l.Listen(); err != nil {
			return err
		}
	}
	l.mu.Lock()
	ln := l.ln
	l.mu.Unlock()
	go func() { <-ctx.Done(); ln.Close() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := acceptBackoffMin
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors, say: the link must come back when they
			// are, not end for good.
			l.warn("accepting peer link streams failed; retrying", "err", err, "retry_in", backoff)
			if clock.Sleep(ctx, l.cfg.Clock, backoff) != nil {
				return nil
			}
			backoff = min(backoff*2, acceptBackoffMax)
			continue
		}
		backoff = acceptBackoffMin
		select {
		case l.handshakes <- struct{}{}:
		default:
			l.dropped.Add(1)
			l.warn("peer link: too many handshakes at once; connection closed", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.serve(ctx, c)
		}()
	}
}

// Dropped counts the connections closed before a stream: over the cap of
// handshakes at once, whose handshake was refused (no certificate, the
// wrong node's or a foreign CA's, garbage, or silence past its deadline),
// or over MaxStreams.
func (l *Link) Dropped() uint64 { return l.dropped.Load() }

// warn logs at most once per warnEvery, saying how many were left out.
func (l *Link) warn(msg string, args ...any) {
	l.warnMu.Lock()
	now := l.cfg.Clock.Now()
	if !l.warnedAt.IsZero() && now.Sub(l.warnedAt) < warnEvery {
		l.suppressed++
		l.warnMu.Unlock()
		return
	}
	n := l.suppressed
	l.warnedAt, l.suppressed = now, 0
	l.warnMu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.log.Warn(msg, args...)
}

func (l *Link) serve(ctx context.Context, raw net.Conn) {
	tune(raw)
	tc := tls.Server(raw, l.server)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := tc.HandshakeContext(hctx)
	cancel()
	<-l.handshakes
	if err != nil {
		l.dropped.Add(1)
		l.warn("peer link handshake refused", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	select {
	case l.streams <- struct{}{}:
		defer func() { <-l.streams }()
	default:
		l.dropped.Add(1)
		l.warn("peer link: too many streams at once; stream closed", "remote", raw.RemoteAddr().String(), "max", l.cfg.MaxStreams)
		tc.Close()
		return
	}
	s := newStream(tc, l.cfg.MaxFrame)
	defer s.Close()
	_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, svc, err := s.Recv()
	_ = tc.SetReadDeadline(time.Time{})
	if err != nil || typ != frameHello {
		l.log.Warn("peer link stream without hello", "err", err)
		return
	}
	l.mu.Lock()
	h := l.handlers[string(svc)]
	l.mu.Unlock()
	if h == nil {
		l.log.Warn("peer link stream for unknown service", "service", string(svc))
		return
	}
	s.Service = string(svc)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { <-sctx.Done(); s.Close() }()
	h(sctx, s)
}

// Dial opens a stream to the peer's service.
func (l *Link) Dial(ctx context.Context, service string) (*Stream, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", l.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("dialing peer link %s: %w", l.cfg.Address, err)
	}
	tune(raw)
	tc := tls.Client(raw, l.client)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("peer link handshake with %s: %w", l.cfg.Address, err)
	}
	s := newStream(tc, l.cfg.MaxFrame)
	s.Service = service
	if err := s.Send(frameHello, []byte(service)); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func tune(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3})
	}
}

// Stream is one authenticated, framed connection.
type Stream struct {
	Service string
	conn    net.Conn
	r       *bufio.Reader
	max     int

	wmu sync.Mutex
	w   *bufio.Writer
}

func newStream(c net.Conn, max int) *Stream {
	return &Stream{conn: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10), max: max}
}

// ErrFrameTooLarge is returned for frames over the limit.
var ErrFrameTooLarge = errors.New("frame too large")

// Send writes one frame and flushes it.
func (s *Stream) Send(typ uint8, payload []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.write(typ, payload); err != nil {
		return err
	}
	return s.w.Flush()
}

// SendBatch writes frames with one flush.
func (s *Stream) SendBatch(typ uint8, payloads [][]byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, p := range payloads {
		if err := s.write(typ, p); err != nil {
			return err
		}
	}
	return s.w.Flush()
}

func (s *Stream) write(typ uint8, payload []byte) error {
	if len(payload)+1 > s.max {
		return fmt.Errorf("sending %d bytes: %w (limit %d)", len(payload), ErrFrameTooLarge, s.max)
	}
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(payload)+1))
	hdr[4] = typ
	if _, err := s.w.Write(hdr[:]); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	if _, err := s.w.Write(payload); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	return nil
}

// Recv reads one frame. The payload is a fresh slice.
func (s *Stream) Recv() (uint8, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:4]))
	if n < 1 || n > s.max {
		return 0, nil, fmt.Errorf("receiving frame of %d bytes: %w (limit %d)", n, ErrFrameTooLarge, s.max)
	}
	buf := make([]byte, n-1)
	if _, err := io.ReadFull(s.r, buf); err != nil {
		return 0, nil, fmt.Errorf("reading frame: %w", err)
	}
	return hdr[4], buf, nil
}

// SetDeadline sets the read and write deadline.
func (s *Stream) SetDeadline(t time.Time) error { return s.conn.SetDeadline(t) }

// Close closes the stream.
func (s *Stream) Close() error { return s.conn.Close() }
