package sessionsync

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/conntrack"
)

// Service is the peer link service name of the sync stream.
const Service = "sessions"

// Table is the kernel's connection table as the syncer reads and writes it
// (conntrack.Conn; conntrack.Fake in tests).
type Table interface {
	Dump(ctx context.Context) ([]conntrack.Entry, error)
	Apply(ctx context.Context, ops []conntrack.Op) (conntrack.ApplyStats, error)
}

// Watcher follows the kernel table's events (conntrack.Watcher).
type Watcher interface {
	Run(ctx context.Context, handle func(conntrack.Event), overrun func()) error
	Close() error
}

// Stream is one framed, authenticated stream to or from the peer
// (peerlink.Stream).
type Stream interface {
	Send(typ uint8, payload []byte) error
	SendBatch(typ uint8, payloads [][]byte) error
	Recv() (uint8, []byte, error)
	Close() error
}

// Options configure a Syncer.
type Options struct {
	Config Config
	Peer   string
	Table  Table
	// Watch opens a watcher when the node becomes active.
	Watch func() (Watcher, error)
	// Dial opens the sync stream to the peer.
	Dial func(ctx context.Context) (Stream, error)
	// Exclude adds prefixes never synced (the appliances' own addresses).
	Exclude []netip.Prefix
	// ConntrackMax reads the kernel's nf_conntrack_max, the default of
	// Config.MaxEntries (default: from /proc).
	ConntrackMax func() (int, error)
	Clock        clock.Clock
	Logger       *slog.Logger
}

// Syncer is the session sync subsystem of one node.
type Syncer struct {
	cfg     Config
	opt     Options
	filter  *Filter
	maxHeld int // most of the peer's connections held
	clk     clock.Clock
	log     *slog.Logger
	roleCh  chan bool

	active atomic.Bool // set by Commit, cleared by Release: no injection while active
	// committed is signalled when a commit finished: the sender starts
	// after it, so that the commit's own events and the resync do not
	// compete with the commit for the CPU and the kernel.
	committed chan struct{}

	// Sender side.
	smu       sync.Mutex
	pending   pendingSet
	collect   bool // a stream is up: events are collected
	resyncReq bool // events were lost: resync on the current stream
	notify    chan struct{}
	ackCh     chan struct{}
	inflight  []inflight
	connected bool

	// Receiver side. The stream goroutine takes batches into held (and,
	// inject strategy, into the queue of kernel writes) under hmu and
	// acknowledges at once; the injector goroutine writes the queue. kmu
	// serialises the kernel writes with the commit, so that nothing is
	// injected or deleted as stale once the commit has taken the state.
	kmu        sync.Mutex
	hmu        sync.Mutex
	held       map[conntrack.Key]heldEntry
	queue      opQueue        // kernel writes waiting (inject strategy)
	handBack   []conntrack.Op // taken by the injector, left for the commit
	queuedAt   time.Time      // when the newest waiting write was queued
	cleanReq   bool           // a resync ended: delete stale kernel entries
	injectKick chan struct{}
	gen        uint64
	resyncing  bool
	inbound    Stream
	inboundN   int

	stats stats
	// Hot-path counters (one per kernel event).
	localEvents, filteredN atomic.Uint64
}

type inflight struct {
	seq  uint64
	sent time.Time
	n    int
}

type heldEntry struct {
	p   packedEntry
	gen uint64
	// injected: the kernel has this connection, or will once the queue
	// is written (inject strategy).
	injected bool
	at       int64 // when queued for the kernel (inject), Unix nanoseconds
	// The slot of its op in the queue (1-based), valid in generation qgen.
	qgen, qslot uint32
}

type stats struct {
	mu                       sync.Mutex
	sent, recv               uint64
	sentResyncs, recvResyncs uint64
	overruns, decodeErrs     uint64
	applyFailed              uint64
	// The peer's records dropped on receipt: outside this node's filter,
	// or over max_entries.
	recvFiltered, recvFull   uint64
	commits                  uint64
	lastCommit               time.Duration
	lastCommitN              int
	lastCommitAt             time.Time
	lastErr                  string
	lastAck                  time.Time
	ackRTT                   time.Duration
	rateSent, rateRecv       float64
	rateAtSent, rateAtRecv   uint64
	rateAt                   time.Time
	resyncMs                 float64
	lastResyncN              int
	staleDeleted, refreshed  uint64
	recvBatches, sentBatches uint64
}

// DefaultMaxEntries bounds the held connections when nf_conntrack_max
// cannot be read.
const DefaultMaxEntries = 262144

// procConntrackMax reads the kernel's connection table limit.
func procConntrackMax() (int, error) {
	b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_max")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// New checks the options and returns a syncer; nothing runs yet.
func New(o Options) (*Syncer, error) {
	if o.Table == nil || o.Watch == nil || o.Dial == nil {
		return nil, errors.New("session sync: table, watcher and dialer are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := NewFilter(o.Config, o.Exclude)
	if err != nil {
		return nil, err
	}
	maxHeld := o.Config.MaxEntries
	if maxHeld == 0 {
		if o.ConntrackMax == nil {
			o.ConntrackMax = procConntrackMax
		}
		n, err := o.ConntrackMax()
		if err != nil || n <= 0 {
			o.Logger.Warn("sessions.max_entries: nf_conntrack_max unreadable, holding at most the default", "max_entries", DefaultMaxEntries, "err", err)
			n = DefaultMaxEntries
		}
		maxHeld = n
	}
	return &Syncer{
		cfg: o.Config, opt: o, filter: f, clk: o.Clock, maxHeld: maxHeld,
		log:    o.Logger.With("component", "sessions", "peer", o.Peer),
		roleCh: make(chan bool, 1), notify: make(chan struct{}, 1), ackCh: make(chan struct{}, 1),
		committed: make(chan struct{}, 1), injectKick: make(chan struct{}, 1),
		held: map[conntrack.Key]heldEntry{}, queue: newOpQueue(), pending: newPendingSet(),
	}, nil
}

// RoleChanged tells the syncer whether this node is active (the sender).
// It never blocks: only the latest value counts.
func (s *Syncer) RoleChanged(active bool) {
	for {
		select {
		case s.roleCh <- active:
			return
		default:
		}
		select {
		case <-s.roleCh:
		default:
		}
	}
}

// Run runs until ctx ends: while the node is active it follows the kernel
// table and streams it to the peer; while standby it writes what the peer
// sends to the kernel and keeps it alive there (inject strategy).
func (s *Syncer) Run(ctx context.Context) error {
	var stop context.CancelFunc
	var done chan struct{}
	halt := func() {
		if stop != nil {
			stop()
			<-done
			stop = nil
		}
	}
	defer halt()
	var injector sync.WaitGroup
	injector.Add(1)
	go func() { defer injector.Done(); s.runInjector(ctx) }()
	defer injector.Wait()
	tick := s.clk.NewTimer(time.Second)
	defer tick.Stop()
	lastRefresh := s.clk.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case active := <-s.roleCh:
			if active && stop == nil {
				stop, done = s.startActive(ctx)
				s.log.Info("following the connection table", "role", "ACTIVE")
			} else if !active && stop != nil {
				halt()
				s.log.Info("stopped following the connection table", "role", "STANDBY")
			}
		case <-tick.C():
			s.sampleRates()
			if s.cfg.Strategy == StrategyInject && s.clk.Now().Sub(lastRefresh) >= s.cfg.Refresh {
				lastRefresh = s.clk.Now()
				s.refresh(ctx)
			}
			tick.Reset(time.Second)
		}
	}
}

func (s *Syncer) startActive(ctx context.Context) (context.CancelFunc, chan struct{}) {
	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.runActive(actx) }()
	return stop, done
}

func (s *Syncer) sampleRates() {
	now := s.clk.Now()
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	if !s.stats.rateAt.IsZero() {
		d := now.Sub(s.stats.rateAt).Seconds()
		if d > 0 {
			s.stats.rateSent = float64(s.stats.sent-s.stats.rateAtSent) / d
			s.stats.rateRecv = float64(s.stats.recv-s.stats.rateAtRecv) / d
		}
	}
	s.stats.rateAt, s.stats.rateAtSent, s.stats.rateAtRecv = now, s.stats.sent, s.stats.recv
}

func (s *Syncer) setErr(err error) {
	s.stats.mu.Lock()
	s.stats.lastErr = err.Error()
	s.stats.mu.Unlock()
}

// wait waits d on the injected clock or until ctx ends.
func (s *Syncer) wait(ctx context.Context, d time.Duration) bool {
	return clock.Sleep(ctx, s.clk, d) == nil
}
