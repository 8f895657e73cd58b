package sessionsync

import (
	"context"
	"fmt"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/provider/conntrack"
)

// Serve handles one inbound sync stream from the peer (the peer link
// handler for Service). A newer stream replaces an older one.
func (s *Syncer) Serve(ctx context.Context, st Stream) {
	s.hmu.Lock()
	if s.inbound != nil {
		s.inbound.Close()
	}
	s.inbound = st
	s.inboundN++
	s.hmu.Unlock()
	defer func() {
		s.hmu.Lock()
		if s.inbound == st {
			s.inbound = nil
		}
		s.hmu.Unlock()
	}()
	s.log.Info("peer opened a session sync stream")
	for {
		typ, p, err := st.Recv()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Info("peer's session sync stream closed", "err", err)
			}
			return
		}
		if typ != frameBatch {
			continue
		}
		bt, err := DecodeBatch(p)
		if err != nil {
			s.stats.mu.Lock()
			s.stats.decodeErrs++
			s.stats.mu.Unlock()
			s.setErr(fmt.Errorf("decoding batch from peer: %w", err))
			s.log.Warn("bad batch from peer: closing the stream (the peer resyncs)", "err", err)
			return
		}
		s.apply(&bt)
		if err := st.Send(frameAck, EncodeAck(bt.Seq)); err != nil {
			return
		}
	}
}

// apply takes one batch into the held state and, with the inject
// strategy on a node that is not active, queues it for the kernel.
func (s *Syncer) apply(bt *Batch) {
	now := s.clk.Now()
	queued := false
	s.hmu.Lock()
	// Read under hmu: Commit sets active before it takes the queue, so a
	// batch either lands in the queue the commit writes or is held only.
	inject := s.cfg.Strategy == StrategyInject && !s.active.Load()
	if bt.Flags&flagResyncBegin != 0 {
		s.gen++
		s.resyncing = true
	}
	filtered, full := 0, 0
	for i := range bt.Records {
		r := &bt.Records[i]
		// The peer's filter is not trusted: only what this node's own
		// filter syncs reaches its kernel.
		if !r.Delete && !s.filter.Match(&r.Entry) {
			filtered++
			continue
		}
		p := pack(&r.Entry)
		old, had := s.held[p.key]
		if !had && !r.Delete && len(s.held) >= s.maxHeld {
			full++
			continue
		}
		if r.Delete {
			if had {
				delete(s.held, p.key)
				if old.injected {
					s.queue.put(&old, conntrack.OpDelete, &old.p)
					queued = true
				}
			}
			continue
		}
		h := heldEntry{p: p, gen: s.gen}
		if inject {
			kind := conntrack.OpCreate
			if had && old.injected && old.p.sameShape(&p) {
				kind = conntrack.OpUpdate
			}
			h.qgen, h.qslot = old.qgen, old.qslot
			s.queue.put(&h, kind, &p)
			h.injected, h.at, queued = true, now.UnixNano(), true
		}
		s.held[p.key] = h
	}
	end := bt.Flags&flagResyncEnd != 0 && s.resyncing
	if end {
		s.resyncing = false
		for k, h := range s.held {
			if h.gen != s.gen {
				delete(s.held, k)
				if h.injected {
					s.queue.put(&h, conntrack.OpDelete, &h.p)
					queued = true
				}
			}
		}
		if !s.active.Load() {
			s.cleanReq, queued = true, true
		}
	}
	if queued {
		s.queuedAt = now
	}
	s.hmu.Unlock()
	s.stats.mu.Lock()
	s.stats.recv += uint64(len(bt.Records))
	s.stats.recvFiltered += uint64(filtered)
	s.stats.recvFull += uint64(full)
	s.stats.recvBatches++
	if end {
		s.stats.recvResyncs++
	}
	s.stats.mu.Unlock()
	if queued {
		s.kickInjector()
	}
}

func (s *Syncer) write(ctx context.Context, ops []conntrack.Op, what string) conntrack.ApplyStats {
	st, err := s.opt.Table.Apply(ctx, ops)
	if err == nil && st.Failed > 0 {
		err = st.FirstErr
	}
	if st.Failed > 0 || err != nil {
		s.stats.mu.Lock()
		s.stats.applyFailed += uint64(max(st.Failed, 1))
		s.stats.mu.Unlock()
		s.setErr(fmt.Errorf("%s %d connections: %w", what, len(ops), err))
		s.log.Warn("writing connections to the kernel", "what", what, "ops", len(ops), "failed", st.Failed, "err", err)
	}
	return st
}

// cleanStale deletes from the kernel the synced connections the peer no
// longer has: left over from when this node was active.
func (s *Syncer) cleanStale(ctx context.Context) {
	entries, err := s.opt.Table.Dump(ctx)
	if err != nil {
		s.setErr(fmt.Errorf("dumping the connection table after resync: %w", err))
		return
	}
	var ops []conntrack.Op
	s.hmu.Lock()
	for i := range entries {
		e := &entries[i]
		if !s.filter.Match(e) {
			continue
		}
		if _, ok := s.held[e.Key()]; !ok {
			ops = append(ops, conntrack.Op{Kind: conntrack.OpDelete, Entry: *e})
		}
	}
	s.hmu.Unlock()
	if len(ops) == 0 {
		return
	}
	st := s.write(ctx, ops, "deleting stale")
	s.stats.mu.Lock()
	s.stats.staleDeleted += uint64(st.Deleted)
	s.stats.mu.Unlock()
	s.log.Info("deleted stale connections after resync", "entries", st.Deleted)
}

// refresh re-arms the kernel timeouts of injected entries that have
// used up half of theirs, so that a quiet connection alive on the peer
// does not expire here.
func (s *Syncer) refresh(ctx context.Context) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	if s.active.Load() {
		return
	}
	now := s.clk.Now()
	var ops []conntrack.Op
	s.hmu.Lock()
	for k, h := range s.held {
		if h.injected && time.Duration(now.UnixNano()-h.at) >= time.Duration(h.p.timeout)*time.Second/2 {
			ops = append(ops, conntrack.Op{Kind: conntrack.OpUpdate, Entry: h.p.entry()})
			h.at = now.UnixNano()
			s.held[k] = h
		}
	}
	s.hmu.Unlock()
	if len(ops) > 0 {
		s.write(ctx, ops, "refreshing")
		s.stats.mu.Lock()
		s.stats.refreshed += uint64(len(ops))
		s.stats.mu.Unlock()
	}
}

// Commit makes the held connections live in the kernel: with the commit
// strategy it writes them all; with inject what the injector has not
// written yet. From then on the node does not inject: it is the source. The
// held state is dropped (the kernel now has it).
func (s *Syncer) Commit(ctx context.Context) error {
	s.active.Store(true)
	start := s.clk.Now()
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.hmu.Lock()
	// What the injector had taken but not written, what it has not taken
	// yet, then (commit strategy, or connections that arrived while this
	// node was active) the rest.
	ops := append(s.handBack, s.queue.take()...)
	s.handBack = nil
	for _, h := range s.held {
		if !h.injected {
			ops = append(ops, conntrack.Op{Kind: conntrack.OpCreate, Entry: h.p.entry()})
		}
	}
	s.held = map[conntrack.Key]heldEntry{}
	s.cleanReq = false
	s.hmu.Unlock()
	var err error
	var st conntrack.ApplyStats
	if len(ops) > 0 {
		st, err = s.opt.Table.Apply(ctx, ops)
	}
	d := s.clk.Now().Sub(start)
	s.stats.mu.Lock()
	s.stats.commits++
	s.stats.lastCommit, s.stats.lastCommitN, s.stats.lastCommitAt = d, len(ops), start
	s.stats.applyFailed += uint64(st.Failed)
	s.stats.mu.Unlock()
	select {
	case s.committed <- struct{}{}:
	default:
	}
	s.log.Info("committed held connections", "entries", len(ops), "created", st.Created, "replaced", st.Replaced,
		"failed", st.Failed, "ms", float64(d.Microseconds())/1000)
	if err != nil {
		return fmt.Errorf("committing %d connections: %w", len(ops), err)
	}
	if st.Failed > 0 {
		// Connections the kernel refused are lost; the rest are live.
		// Holding the role matters more than those: report, do not fail.
		s.setErr(fmt.Errorf("commit: %d of %d connections refused: %w", st.Failed, len(ops), st.FirstErr))
	}
	return nil
}

// Release marks the node as not active: it injects again (inject
// strategy) and keeps what the peer sends.
func (s *Syncer) Release() {
	s.active.Store(false)
	select {
	case <-s.committed:
	default:
	}
}

// Action is the takeover step that commits the held connections before
// addresses, routes or the probe attract traffic (phase prepare).
func (s *Syncer) Action() action.Action { return commitAction{s} }

type commitAction struct{ s *Syncer }

func (a commitAction) Name() string { return "sessions" }

func (a commitAction) Activate(ctx context.Context, _ action.Takeover) error {
	return a.s.Commit(ctx)
}

func (a commitAction) Deactivate(context.Context, action.Takeover) error {
	a.s.Release()
	return nil
}

func (a commitAction) Verify(_ context.Context, active bool) error {
	// Follow the role without recommitting: the kernel is the truth
	// while active.
	a.s.active.Store(active)
	return nil
}
