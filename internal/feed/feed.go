// Package feed is baton's event hub: a small bounded publish/subscribe of
// typed JSON events (transitions, path changes, action steps, drops, sync
// refusals). Publish never blocks: a subscriber that cannot keep up is
// dropped and counted, so that the role loop never waits for a reader.
package feed

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// Event types.
const (
	TypeTransition   = "transition"   // a role change
	TypeTakeover     = "takeover"     // a pipeline run finished (its steps)
	TypeAction       = "action"       // one action step finished
	TypePath         = "path"         // a heartbeat path went up or down
	TypePeer         = "peer"         // the peer became alive or dead
	TypeDrop         = "drop"         // heartbeat messages dropped (counts by reason)
	TypeSyncRefusal  = "sync_refusal" // config sync refused a set
	TypeSamples      = "samples"      // the periodic RTT samples of each path
	TypeSubscription = "subscribed"   // first event of every stream
)

// Event is one published event. Data is encoded once, at Publish.
type Event struct {
	Seq  uint64          `json:"seq"`
	Type string          `json:"type"`
	At   time.Time       `json:"at"`
	Node string          `json:"node"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Stats are the hub's counters.
type Stats struct {
	Published   uint64 `json:"published"`
	Subscribers int    `json:"subscribers"`
	Dropped     uint64 `json:"dropped_subscribers"`
}

// Hub fans events out to subscribers and keeps the most recent ones for
// subscribers that resume from a sequence number.
type Hub struct {
	node string
	clk  clock.Clock

	mu      sync.Mutex
	seq     uint64
	ring    []Event // the last len(ring) events, ring[next] is the oldest once full
	next    int
	full    bool
	subs    map[*Sub]struct{}
	dropped uint64
}

// DefaultBuffer is a subscriber's queue when Subscribe is given 0.
const DefaultBuffer = 256

// New returns a hub for node that keeps the last keep events for resuming.
func New(node string, clk clock.Clock, keep int) *Hub {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Hub{node: node, clk: clk, ring: make([]Event, max(1, keep)), subs: map[*Sub]struct{}{}}
}

// Sub is one subscription.
type Sub struct {
	c       chan Event
	dropped bool
}

// C delivers the events; it is closed when the subscription ends (Close,
// or dropped for being slow).
func (s *Sub) C() <-chan Event { return s.c }

// Dropped reports whether the hub dropped this subscriber for being slow
// (valid once C is closed).
func (s *Sub) Dropped() bool { return s.dropped }

// Publish encodes data and hands the event to every subscriber without
// waiting. A nil hub ignores it.
func (h *Hub) Publish(typ string, data any) {
	if h == nil {
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		raw, _ = json.Marshal(map[string]string{"error": "encoding event: " + err.Error()})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev := Event{Seq: h.seq, Type: typ, At: h.clk.Now(), Node: h.node, Data: raw}
	h.ring[h.next] = ev
	h.next = (h.next + 1) % len(h.ring)
	if h.next == 0 {
		h.full = true
	}
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			h.dropLocked(s, true)
		}
	}
}

// Subscribe starts a subscription with a queue of buffer events. When
// after is non-zero, the kept events with a greater sequence number are
// queued first (as many as fit).
func (h *Hub) Subscribe(buffer int, after uint64) *Sub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	s := &Sub{c: make(chan Event, buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if after > 0 {
		for _, ev := range h.keptLocked() {
			if ev.Seq > after && len(s.c) < cap(s.c) {
				s.c <- ev
			}
		}
	}
	h.subs[s] = struct{}{}
	return s
}

// Close ends a subscription; it is safe to call more than once.
func (h *Hub) Close(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s, false)
}

func (h *Hub) dropLocked(s *Sub, slow bool) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	if slow {
		s.dropped = true
		h.dropped++
	}
	close(s.c)
}

func (h *Hub) keptLocked() []Event {
	if !h.full {
		return append([]Event(nil), h.ring[:h.next]...)
	}
	return append(append([]Event(nil), h.ring[h.next:]...), h.ring[:h.next]...)
}

// Stats returns the counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Published: h.seq, Subscribers: len(h.subs), Dropped: h.dropped}
}
