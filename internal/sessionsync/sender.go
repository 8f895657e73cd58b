package sessionsync

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/batonha/baton/internal/provider/conntrack"
)

// pendingSet holds the changes not yet sent, in order. It does not merge
// repeated changes of a connection: the receiver applies them in order, and
// the event path on the active node stays a plain append. maxPending bounds
// it: a peer that falls that far behind gets a full resync instead.
type pendingSet struct {
	recs []change
}

// change is a record waiting to be sent, without pointers (see
// packedEntry): the backlog of a burst can hold many.
type change struct {
	del bool
	p   packedEntry
}

const maxPending = 1 << 20

func newPendingSet() pendingSet { return pendingSet{} }

func (p *pendingSet) put(c change) { p.recs = append(p.recs, c) }

// keys returns the set of connections with a pending change.
func (p *pendingSet) keys() map[conntrack.Key]struct{} {
	m := make(map[conntrack.Key]struct{}, len(p.recs))
	for i := range p.recs {
		m[p.recs[i].p.key] = struct{}{}
	}
	return m
}

func (p *pendingSet) take() []change {
	r := p.recs
	p.recs = nil
	return r
}

func (p *pendingSet) len() int { return len(p.recs) }

// commitWait bounds how long the sender waits for the takeover commit.
const commitWait = 30 * time.Second

// onEvent takes one kernel event (watcher goroutine).
func (s *Syncer) onEvent(ev conntrack.Event) {
	if !s.filter.Match(&ev.Entry) {
		s.filteredN.Add(1)
		return
	}
	s.localEvents.Add(1)
	s.smu.Lock()
	if !s.collect {
		// No stream: the next connection starts with a full resync.
		s.smu.Unlock()
		return
	}
	if s.pending.len() >= maxPending {
		// The peer is too far behind: drop the backlog, resync instead.
		s.pending.take()
		s.resyncReq = true
	}
	s.pending.put(change{del: ev.Type == conntrack.EventDestroy, p: pack(&ev.Entry)})
	n := s.pending.len()
	s.smu.Unlock()
	if n == 1 || n >= s.cfg.BatchSize {
		s.kick()
	}
}

func (s *Syncer) onOverrun() {
	s.log.Warn("conntrack events lost: resyncing the peer")
	s.stats.mu.Lock()
	s.stats.overruns++
	s.stats.mu.Unlock()
	s.smu.Lock()
	s.resyncReq = true
	s.smu.Unlock()
	s.kick()
}

func (s *Syncer) kick() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// runActive follows the table and keeps a stream to the peer until ctx
// ends.
func (s *Syncer) runActive(ctx context.Context) {
	// Let the takeover's commit finish first (it runs in the pipeline,
	// which may lag the role change a little).
	t := s.clk.NewTimer(commitWait)
	select {
	case <-ctx.Done():
		t.Stop()
		return
	case <-s.committed:
	case <-t.C():
		s.log.Warn("no commit seen after becoming active: following the table anyway")
	}
	t.Stop()
	var w Watcher
	for {
		var err error
		if w, err = s.opt.Watch(); err == nil {
			break
		}
		s.setErr(fmt.Errorf("following conntrack events: %w", err))
		s.log.Error("cannot follow conntrack events", "err", err)
		if !s.wait(ctx, s.cfg.Reconnect) {
			return
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx, s.onEvent, s.onOverrun); err != nil {
			s.setErr(err)
			s.log.Error("conntrack event watcher stopped", "err", err)
		}
	}()
	defer func() { wg.Wait(); w.Close() }()

	for ctx.Err() == nil {
		st, err := s.opt.Dial(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.setErr(fmt.Errorf("dialling peer: %w", err))
				s.log.Debug("cannot reach peer for session sync", "err", err)
			}
			s.wait(ctx, s.cfg.Reconnect)
			continue
		}
		s.log.Info("session sync stream up: full resync")
		err = s.session(ctx, st)
		st.Close()
		if ctx.Err() != nil {
			return
		}
		s.setErr(err)
		s.log.Warn("session sync stream down", "err", err)
		s.wait(ctx, s.cfg.Reconnect)
	}
}

// session runs one stream: a full resync, then changes as they come.
func (s *Syncer) session(ctx context.Context, st Stream) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.smu.Lock()
	s.collect, s.connected, s.resyncReq = true, true, true
	s.pending.take()
	s.inflight = nil
	s.smu.Unlock()
	defer func() {
		s.smu.Lock()
		s.collect, s.connected = false, false
		s.pending.take()
		s.inflight = nil
		s.smu.Unlock()
	}()
	readErr := make(chan error, 1)
	go func() {
		defer cancel()
		for {
			typ, p, err := st.Recv()
			if err != nil {
				readErr <- fmt.Errorf("reading acks: %w", err)
				return
			}
			if typ != frameAck {
				continue
			}
			seq, err := DecodeAck(p)
			if err != nil {
				readErr <- err
				return
			}
			s.onAck(seq)
		}
	}()
	fail := func(err error) error {
		select {
		case rerr := <-readErr:
			return rerr
		default:
		}
		if sctx.Err() != nil && ctx.Err() == nil {
			select {
			case rerr := <-readErr:
				return rerr
			case <-time.After(time.Second):
			}
		}
		return err
	}
	var seq uint64
	for {
		s.smu.Lock()
		resync := s.resyncReq
		s.resyncReq = false
		s.smu.Unlock()
		if resync {
			if err := s.resync(sctx, st, &seq); err != nil {
				return fail(err)
			}
		}
		select {
		case <-sctx.Done():
			return fail(sctx.Err())
		case <-s.notify:
		}
		s.smu.Lock()
		n := s.pending.len()
		s.smu.Unlock()
		if n < s.cfg.BatchSize && s.cfg.FlushInterval > 0 {
			// Linger briefly so that a burst goes out in full batches.
			if !s.wait(sctx, s.cfg.FlushInterval) {
				return fail(sctx.Err())
			}
		}
		s.smu.Lock()
		recs := s.pending.take()
		s.smu.Unlock()
		if err := s.sendRecords(sctx, st, &seq, recs, 0, false); err != nil {
			return fail(err)
		}
	}
}

// resync sends the whole table between resync markers.
func (s *Syncer) resync(ctx context.Context, st Stream, seq *uint64) error {
	start := s.clk.Now()
	entries, err := s.opt.Table.Dump(ctx)
	if err != nil {
		return fmt.Errorf("dumping the connection table: %w", err)
	}
	recs := make([]change, 0, len(entries))
	filtered := 0
	s.smu.Lock()
	changed := s.pending.keys()
	for i := range entries {
		e := &entries[i]
		if !s.filter.Match(e) {
			filtered++
			continue
		}
		// A connection that changed since the dump began is sent as its
		// latest event says.
		if p := pack(e); !has(changed, p.key) {
			recs = append(recs, change{p: p})
		}
	}
	recs = append(recs, s.pending.take()...)
	s.smu.Unlock()
	if err := s.sendRecords(ctx, st, seq, recs, flagResyncBegin, true); err != nil {
		return err
	}
	s.stats.mu.Lock()
	s.stats.sentResyncs++
	s.filteredN.Add(uint64(filtered))
	s.stats.lastResyncN = len(recs)
	s.stats.resyncMs = float64(s.clk.Now().Sub(start).Microseconds()) / 1000
	s.stats.mu.Unlock()
	s.log.Info("full resync sent", "entries", len(recs), "ms", s.clk.Now().Sub(start).Milliseconds())
	return nil
}

// sendRecords sends recs in batches; firstFlags go on the first batch,
// and end puts the resync end marker on the last.
func (s *Syncer) sendRecords(ctx context.Context, st Stream, seq *uint64, recs []change, firstFlags uint8, end bool) error {
	bs := s.cfg.BatchSize
	var buf []byte
	for i := 0; i < len(recs) || i == 0; i += bs {
		j := min(i+bs, len(recs))
		var flags uint8
		if i == 0 {
			flags = firstFlags
		}
		if end && j == len(recs) {
			flags |= flagResyncEnd
		}
		if j == i && flags == 0 {
			return nil
		}
		if err := s.waitWindow(ctx); err != nil {
			return err
		}
		*seq++
		buf = AppendBatchHeader(buf[:0], *seq, flags, j-i)
		for k := i; k < j; k++ {
			buf = appendChange(buf, &recs[k])
		}
		s.smu.Lock()
		s.inflight = append(s.inflight, inflight{seq: *seq, sent: s.clk.Now(), n: j - i})
		s.smu.Unlock()
		if err := st.Send(frameBatch, buf); err != nil {
			return fmt.Errorf("sending batch %d: %w", *seq, err)
		}
		s.stats.mu.Lock()
		s.stats.sent += uint64(j - i)
		s.stats.sentBatches++
		s.stats.mu.Unlock()
		if j == len(recs) {
			break
		}
	}
	return nil
}

func (s *Syncer) waitWindow(ctx context.Context) error {
	for {
		s.smu.Lock()
		n := len(s.inflight)
		s.smu.Unlock()
		if n < s.cfg.Window {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ackCh:
		}
	}
}

func (s *Syncer) onAck(seq uint64) {
	now := s.clk.Now()
	s.smu.Lock()
	var rtt time.Duration
	i := 0
	for i < len(s.inflight) && s.inflight[i].seq <= seq {
		rtt = now.Sub(s.inflight[i].sent)
		i++
	}
	s.inflight = s.inflight[i:]
	s.smu.Unlock()
	s.stats.mu.Lock()
	s.stats.lastAck, s.stats.ackRTT = now, rtt
	s.stats.mu.Unlock()
	select {
	case s.ackCh <- struct{}{}:
	default:
	}
}

func has(m map[conntrack.Key]struct{}, k conntrack.Key) bool {
	_, ok := m[k]
	return ok
}
