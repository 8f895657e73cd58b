package sessionsync

import (
	"context"
	"time"

	"github.com/batonha/baton/internal/provider/conntrack"
)

// opQueue holds the kernel writes waiting on the standby, in order. A
// connection's held entry remembers its op's slot, so a later change to a
// queued connection takes its place and the connection costs one write,
// without a map of its own.
type opQueue struct {
	gen uint32 // slots of earlier generations were taken
	ops []packedOp
}

// packedOp is a queued write without pointers (see packedEntry).
type packedOp struct {
	kind conntrack.OpKind
	p    packedEntry
}

func newOpQueue() opQueue { return opQueue{gen: 1} }

// put queues the write kind of p for the connection held as h and records
// the slot in h. Merged with what is queued for it: an update of a
// connection still to be created (or just deleted) is a create, and a
// delete replaces anything. A delete is never dropped, even when the
// create it follows was not written yet: the kernel may hold an older
// version (from before a commit, say) that must go.
func (q *opQueue) put(h *heldEntry, kind conntrack.OpKind, p *packedEntry) {
	if h.qgen == q.gen && h.qslot > 0 {
		prev := &q.ops[h.qslot-1]
		if kind == conntrack.OpUpdate && prev.kind != conntrack.OpUpdate {
			kind = conntrack.OpCreate
		}
		*prev = packedOp{kind: kind, p: *p}
		return
	}
	q.ops = append(q.ops, packedOp{kind: kind, p: *p})
	h.qgen, h.qslot = q.gen, uint32(len(q.ops))
}

// take empties the queue and returns its ops. The next queue starts with
// room for a burst of moderate size, not the last one's (which may have
// been a full resync).
func (q *opQueue) take() []conntrack.Op {
	out := make([]conntrack.Op, len(q.ops))
	for i := range q.ops {
		out[i] = conntrack.Op{Kind: q.ops[i].kind, Entry: q.ops[i].p.entry()}
	}
	q.ops = make([]packedOp, 0, min(cap(q.ops), 4096))
	q.gen++
	return out
}

func (q *opQueue) len() int { return len(q.ops) }

func (s *Syncer) kickInjector() {
	select {
	case s.injectKick <- struct{}{}:
	default:
	}
}

// runInjector writes the queued changes to the kernel once none has
// arrived for InjectDelay, or InjectMaxDelay after the first, until ctx
// ends.
func (s *Syncer) runInjector(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.injectKick:
		}
		first := s.clk.Now()
		for s.cfg.InjectDelay > 0 {
			if !s.wait(ctx, s.cfg.InjectDelay) {
				return
			}
			s.hmu.Lock()
			last := s.queuedAt
			s.hmu.Unlock()
			if s.injectDue(s.clk.Now(), first, last) {
				break
			}
		}
		s.inject(ctx)
	}
}

// injectDue reports whether the waiting changes are to be written at now:
// none arrived for InjectDelay since last, or the round that began at
// first has waited InjectMaxDelay.
func (s *Syncer) injectDue(now, first, last time.Time) bool {
	return now.Sub(last) >= s.cfg.InjectDelay || now.Sub(first) >= s.cfg.InjectMaxDelay
}

// injectChunk is the most ops the injector writes at once: a takeover
// waits for at most one chunk, then writes the rest itself.
const injectChunk = 2048

// inject writes what is queued, then deletes stale entries if a resync
// ended. A node that became active writes nothing more: what it had taken
// goes back for the commit, which writes it first.
func (s *Syncer) inject(ctx context.Context) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.hmu.Lock()
	if s.active.Load() {
		s.hmu.Unlock()
		return
	}
	ops := append(s.handBack, s.queue.take()...)
	s.handBack = nil
	clean := s.cleanReq
	s.cleanReq = false
	s.hmu.Unlock()
	for len(ops) > 0 {
		if s.active.Load() {
			s.hmu.Lock()
			s.handBack = ops
			s.hmu.Unlock()
			return
		}
		n := min(len(ops), injectChunk)
		st := s.write(ctx, ops[:n], "injecting")
		s.log.Debug("injected", "ops", n, "created", st.Created, "updated", st.Updated, "replaced", st.Replaced,
			"deleted", st.Deleted, "missing", st.Missing, "failed", st.Failed)
		ops = ops[n:]
	}
	if clean {
		s.cleanStale(ctx)
	}
}
