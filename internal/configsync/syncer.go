package configsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/retry"
	"github.com/prometheus/client_golang/prometheus"
)

// Link is what the syncer needs of the authenticated peer link.
type Link interface {
	Handle(service string, h peerlink.Handler)
	Dial(ctx context.Context, service string) (*peerlink.Stream, error)
}

// Options configure a Syncer.
type Options struct {
	Config   Config
	Node     string // this node's name
	Peer     string // the peer's name
	StateDir string // node.state_dir: config sync keeps state and backups in StateDir/configsync
	Link     Link
	Clock    clock.Clock
	Logger   *slog.Logger
	Registry prometheus.Registerer // optional
	Runner   Runner                // optional, default ShellRunner
}

// Syncer keeps the configured files in step with the peer: it watches
// them, pushes local edits, compares everything with the peer
// periodically, and receives the peer's files.
type Syncer struct {
	eng  *Engine
	link Link
	cfg  Config
	clk  clock.Clock
	log  *slog.Logger
	met  *metrics

	mu        sync.Mutex
	pending   map[Key]time.Time // to push, with when the change was seen
	inflight  map[Key]time.Time // pushed, waiting for the ack
	connected bool
	lastSync  time.Time
	lastErr   string
	changed   chan struct{} // closed and replaced on every change
	evPaths   map[string]time.Time
	evRescan  bool
	evTimer   clock.Timer

	kick   chan struct{}
	full   chan struct{}
	redial chan struct{} // the peer reached us: retry our stream now
}

// New builds the syncer and registers its handler on the link; nothing
// runs until Run.
func New(o Options) (*Syncer, error) {
	if o.Link == nil {
		return nil, errors.New("config sync needs the peer link (link section)")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	log := o.Logger.With("component", "configsync", "peer", o.Peer)
	s := &Syncer{link: o.Link, cfg: o.Config, clk: o.Clock, log: log,
		pending: map[Key]time.Time{}, inflight: map[Key]time.Time{}, changed: make(chan struct{}),
		evPaths: map[string]time.Time{}, kick: make(chan struct{}, 1), full: make(chan struct{}, 1),
		redial: make(chan struct{}, 1)}
	if s.cfg.Interval <= 0 {
		s.cfg.Interval = DefaultInterval
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	met, err := newMetrics(reg, func() Status { return s.Status(false) })
	if err != nil {
		return nil, fmt.Errorf("registering config sync metrics: %w", err)
	}
	s.met = met
	s.eng, err = NewEngine(EngineOptions{Config: o.Config, Node: o.Node, Peer: o.Peer,
		StateDir: filepath.Join(o.StateDir, "configsync"), Clock: o.Clock, Logger: log, Runner: o.Runner, metrics: met})
	if err != nil {
		return nil, err
	}
	o.Link.Handle(Service, s.handle)
	return s, nil
}

// Engine returns the syncer's engine.
func (s *Syncer) Engine() *Engine { return s.eng }

func (s *Syncer) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Syncer) markPending(keys []Key, seen time.Time) {
	if len(keys) == 0 {
		return
	}
	s.mu.Lock()
	for _, k := range keys {
		if _, ok := s.pending[k]; !ok {
			s.pending[k] = seen
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run runs until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	defer func() {
		if err := s.eng.Save(); err != nil {
			s.log.Error("saving config sync state", "err", err)
		}
	}()
	s.markPending(s.eng.ScanAll(), s.clk.Now())
	var wg sync.WaitGroup
	defer wg.Wait()
	w, err := newWatcher()
	if err != nil {
		s.log.Warn("file-system notifications unavailable; relying on the periodic comparison", "err", err)
	} else {
		s.watchDirs(w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(s.onEvents); err != nil {
				s.log.Error("file-system notifications stopped", "err", err)
			}
		}()
		defer w.close()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.saveLoop(ctx) }()

	retryT := s.clk.NewTimer(0)
	defer retryT.Stop()
	waits := retry.Doubling{First: 200 * time.Millisecond, Max: 5 * time.Second}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-retryT.C():
		case <-s.redial:
		}
		start := s.clk.Now()
		err := s.session(ctx, w)
		s.mu.Lock()
		s.connected = false
		for k, t := range s.inflight { // unacknowledged: send again
			if _, ok := s.pending[k]; !ok {
				s.pending[k] = t
			}
		}
		s.inflight = map[Key]time.Time{}
		if err != nil && ctx.Err() == nil {
			if s.lastErr != err.Error() {
				s.log.Warn("config sync stream to the peer down", "err", err)
			}
			s.lastErr = err.Error()
		}
		s.notifyLocked()
		s.mu.Unlock()
		if s.clk.Now().Sub(start) > 10*time.Second {
			waits.Reset()
		}
		retryT.Reset(waits.Next())
	}
}

func (s *Syncer) saveLoop(ctx context.Context) {
	t := s.clk.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			if err := s.eng.Save(); err != nil {
				s.log.Error("saving config sync state", "err", err)
			}
			t.Reset(time.Second)
		}
	}
}

// watchDirs watches every directory a set's patterns can match in.
func (s *Syncer) watchDirs(w *watcher) {
	if w == nil {
		return
	}
	for _, n := range s.eng.order {
		set := s.eng.sets[n]
		for _, p := range set.cfg.Files {
			dirs, _ := filepath.Glob(filepath.Join(set.root, filepath.Dir(p)))
			for _, d := range dirs {
				if real, err := filepath.EvalSymlinks(d); err != nil || !within(set.root, real) {
					continue
				}
				if fi, err := os.Stat(d); err == nil && fi.IsDir() {
					if err := w.add(d); err != nil {
						s.log.Warn("cannot watch directory", "dir", d, "err", err)
					}
				}
			}
		}
	}
}

// onEvents debounces file-system events.
func (s *Syncer) onEvents(paths []string, rescan bool) {
	now := s.clk.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range paths {
		if _, ok := s.evPaths[p]; !ok {
			s.evPaths[p] = now
		}
	}
	s.evRescan = s.evRescan || rescan
	if s.evTimer == nil {
		s.evTimer = s.clk.AfterFunc(s.cfg.Debounce, s.flushEvents)
	}
}

func (s *Syncer) flushEvents() {
	s.mu.Lock()
	evs, rescan := s.evPaths, s.evRescan
	s.evPaths, s.evRescan, s.evTimer = map[string]time.Time{}, false, nil
	s.mu.Unlock()
	if rescan {
		s.requestFull()
	}
	paths := make([]string, 0, len(evs))
	first := s.clk.Now()
	for p, t := range evs {
		paths = append(paths, p)
		if t.Before(first) {
			first = t
		}
	}
	sort.Strings(paths)
	for _, k := range s.eng.ScanPaths(paths) {
		set := s.eng.sets[k.Set]
		s.markPending([]Key{k}, evs[s.eng.path(set, k.Path)])
	}
}

func (s *Syncer) requestFull() {
	select {
	case s.full <- struct{}{}:
	default:
	}
}

// session runs one outbound stream to the peer until it fails.
func (s *Syncer) session(ctx context.Context, w *watcher) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := s.link.Dial(dctx, Service)
	cancel()
	if err != nil {
		return err
	}
	defer st.Close()
	if err := s.helloDial(st); err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { <-sctx.Done(); st.Close() }()
	s.mu.Lock()
	s.connected, s.lastErr = true, ""
	s.notifyLocked()
	s.mu.Unlock()
	s.log.Info("config sync stream to the peer up")

	readErr := make(chan error, 1)
	go func() { readErr <- s.readReplies(st) }()

	interval := s.clk.NewTimer(s.cfg.Interval)
	defer interval.Stop()
	full := true
	for {
		if full {
			s.watchDirs(w)
			s.markPending(s.eng.ScanAll(), s.clk.Now())
			if err := s.sendIndex(st); err != nil {
				return err
			}
			full = false
		}
		if err := s.pushPending(st); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		case <-s.kick:
		case <-s.full:
			full = true
		case <-interval.C():
			full = true
			interval.Reset(s.cfg.Interval)
		}
	}
}

func (s *Syncer) helloDial(st *peerlink.Stream) error {
	p, err := encodeFrame(hello{Node: s.eng.self, Fingerprint: s.eng.Fingerprint()}, nil)
	if err != nil {
		return err
	}
	if err := st.Send(msgHello, p); err != nil {
		return fmt.Errorf("sending hello to the peer: %w", err)
	}
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	typ, p, err := st.Recv()
	_ = st.SetDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("waiting for the peer's hello: %w", err)
	}
	var h hello
	if _, err := decodeFrame(p, &h); err != nil || typ != msgHello {
		return fmt.Errorf("peer answered hello with message %d: %v", typ, err)
	}
	if h.Error != "" {
		return fmt.Errorf("peer refused config sync: %s", h.Error)
	}
	if h.Node != s.eng.peer {
		return fmt.Errorf("%w: peer says it is %q, want %q", ErrRefused, h.Node, s.eng.peer)
	}
	return nil
}

func (s *Syncer) sendIndex(st *peerlink.Stream) error {
	entries := s.eng.Index()
	if err := s.eng.Save(); err != nil {
		return err
	}
	p, err := encodeFrame(index{Entries: entries}, nil)
	if err != nil {
		return err
	}
	if err := st.Send(msgIndex, p); err != nil {
		return fmt.Errorf("sending index to the peer: %w", err)
	}
	return nil
}

// pushPending sends every pending file. Versions are saved to disk before
// they leave the node, so a restart never reuses a version number the
// peer has already seen.
func (s *Syncer) pushPending(st *peerlink.Stream) error {
	s.mu.Lock()
	keys := make([]Key, 0, len(s.pending))
	for k := range s.pending {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	var batch [][]byte
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.eng.Save(); err != nil {
			return err
		}
		if err := st.SendBatch(msgFile, batch); err != nil {
			return fmt.Errorf("sending files to the peer: %w", err)
		}
		batch, size = nil, 0
		return nil
	}
	for _, k := range keys {
		h, content, ok, err := s.eng.Outgoing(k)
		s.mu.Lock()
		seen := s.pending[k]
		delete(s.pending, k)
		if ok && err == nil {
			s.inflight[k] = seen
		}
		s.notifyLocked()
		s.mu.Unlock()
		if err != nil || !ok {
			continue // reported by the engine as a local error
		}
		p, err := encodeFrame(h, content)
		if err != nil {
			return err
		}
		batch = append(batch, p)
		if size += len(p); size > 8<<20 || len(batch) >= 256 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// readReplies handles the peer's answers on an outbound stream.
func (s *Syncer) readReplies(st *peerlink.Stream) error {
	for {
		typ, p, err := st.Recv()
		if err != nil {
			return fmt.Errorf("reading from the peer: %w", err)
		}
		switch typ {
		case msgWant:
			var w want
			if _, err := decodeFrame(p, &w); err != nil {
				return err
			}
			s.markPending(w.Keys, s.clk.Now())
			if w.Index {
				s.mu.Lock()
				s.lastSync = s.clk.Now()
				s.notifyLocked()
				s.mu.Unlock()
			}
		case msgAck:
			var a ack
			if _, err := decodeFrame(p, &a); err != nil {
				return err
			}
			current := s.eng.HandleAck(a)
			s.mu.Lock()
			seen, ok := s.inflight[a.Key]
			delete(s.inflight, a.Key)
			s.notifyLocked()
			s.mu.Unlock()
			if current && ok && !seen.IsZero() {
				s.met.propagated(a.Set, s.clk.Now().Sub(seen))
			}
		}
	}
}

// handle serves an inbound stream from the peer.
func (s *Syncer) handle(ctx context.Context, st *peerlink.Stream) {
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	typ, p, err := st.Recv()
	_ = st.SetDeadline(time.Time{})
	if err != nil {
		return
	}
	var h hello
	if _, err := decodeFrame(p, &h); err != nil || typ != msgHello {
		s.log.Warn("config sync stream without hello", "err", err)
		return
	}
	reply := hello{Node: s.eng.self, Fingerprint: s.eng.Fingerprint()}
	switch {
	case h.Node != s.eng.peer:
		reply.Error = fmt.Sprintf("this is %s, whose peer is %s, not %s", s.eng.self, s.eng.peer, h.Node)
	case h.Fingerprint != reply.Fingerprint:
		reply.Error = fmt.Sprintf("sync configuration differs between %s and %s (sets, substitute or local_lines; fingerprints %s and %s)",
			h.Node, s.eng.self, h.Fingerprint, reply.Fingerprint)
	}
	if reply.Error != "" {
		s.log.Error("refusing config sync stream", "reason", reply.Error)
		s.mu.Lock()
		s.lastErr = reply.Error
		s.mu.Unlock()
	}
	if p, err := encodeFrame(reply, nil); err == nil {
		_ = st.Send(msgHello, p)
	}
	if reply.Error != "" {
		return
	}
	select {
	case s.redial <- struct{}{}:
	default:
	}
	for {
		typ, p, err := st.Recv()
		if errors.Is(err, peerlink.ErrFrameTooLarge) {
			s.eng.RefuseStream(err)
		}
		if err != nil {
			return
		}
		if err := s.serve(ctx, st, typ, p); err != nil {
			s.log.Warn("config sync stream from the peer closed", "err", err)
			return
		}
	}
}

func (s *Syncer) serve(ctx context.Context, st *peerlink.Stream, typ uint8, p []byte) error {
	switch typ {
	case msgIndex:
		var ix index
		if _, err := decodeFrame(p, &ix); err != nil {
			return err
		}
		need, push := s.eng.CompareIndex(ix.Entries)
		s.markPending(push, time.Time{})
		out, err := encodeFrame(want{Keys: need, Index: true}, nil)
		if err != nil {
			return err
		}
		return st.Send(msgWant, out)
	case msgFile:
		var h fileHeader
		content, err := decodeFrame(p, &h)
		if err != nil {
			return err
		}
		a, pushBack := s.eng.Receive(ctx, h, content)
		if pushBack {
			s.markPending([]Key{h.Key}, time.Time{})
		}
		out, err := encodeFrame(a, nil)
		if err != nil {
			return err
		}
		return st.Send(msgAck, out)
	case msgIndexReq:
		out, err := encodeFrame(index{Entries: s.eng.Index()}, nil)
		if err != nil {
			return err
		}
		return st.Send(msgIndex, out)
	case msgGet:
		var w want
		if _, err := decodeFrame(p, &w); err != nil {
			return err
		}
		for _, k := range w.Keys {
			h, content, ok, err := s.eng.Outgoing(k)
			if err != nil || !ok {
				h = fileHeader{Key: k, Meta: Meta{Deleted: true}}
				content = nil
			}
			out, err := encodeFrame(h, content)
			if err != nil {
				return err
			}
			if err := st.Send(msgFile, out); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unexpected message type %d", typ)
}

// SyncNow scans every file, compares with the peer and waits (until ctx
// ends) for every pending file to be acknowledged.
func (s *Syncer) SyncNow(ctx context.Context) error {
	start := s.clk.Now()
	s.requestFull()
	for {
		s.mu.Lock()
		done := s.connected && !s.lastSync.Before(start) && len(s.pending) == 0 && len(s.inflight) == 0
		lastErr, ch := s.lastErr, s.changed
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if lastErr != "" {
				return fmt.Errorf("sync with the peer not complete: %s", lastErr)
			}
			return fmt.Errorf("sync with the peer not complete: %w", ctx.Err())
		case <-ch:
		}
	}
}
