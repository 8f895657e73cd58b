package heartbeat

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/batonha/baton/internal/role"
)

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventMessage: a valid message advertised a peer state that differs from the
	// last one delivered (repeats are not events); Info holds it.
	EventMessage EventKind = iota + 1
	// EventPeerAlive: the first path came up.
	EventPeerAlive
	// EventPeerDead: every path is down, or the peer is gone (Gone set).
	EventPeerDead
	// EventPathUp: Path came up.
	EventPathUp
	// EventPathDown: Path went down.
	EventPathDown
)

func (k EventKind) String() string {
	switch k {
	case EventMessage:
		return "message"
	case EventPeerAlive:
		return "peer_alive"
	case EventPeerDead:
		return "peer_dead"
	case EventPathUp:
		return "path_up"
	case EventPathDown:
		return "path_down"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is something the monitor learned about the peer.
type Event struct {
	Kind EventKind
	Path string // the path concerned (Message, PathUp, PathDown)
	// Info is the peer's advertised state: on Message, and on PeerAlive
	// when a message brought the peer back. Info.Name is the peer's name;
	// it is empty when the peer's state is unknown (a peer check passed).
	Info    role.PeerInfo
	Leaving bool // the peer announced a graceful shutdown
	Gone    bool // PeerDead because the peer's process is gone (channel closed) or left
	At      time.Time
}

// eventQueue sits between the monitor and the Events channel. State events
// are never dropped; a Message event replaces a Message event queued just
// before it when the consumer lags, so the queue stays bounded.
type eventQueue struct {
	mu        sync.Mutex
	items     []Event
	closed    bool
	coalesced uint64
	notify    chan struct{}
}

func newEventQueue() *eventQueue {
	return &eventQueue{notify: make(chan struct{}, 1)}
}

func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	if n := len(q.items); e.Kind == EventMessage && n > 0 && q.items[n-1].Kind == EventMessage {
		q.items[n-1] = e
		q.coalesced++
	} else {
		q.items = append(q.items, e)
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return Event{}, false
	}
	e := q.items[0]
	q.items[0] = Event{}
	q.items = q.items[1:]
	return e, true
}

func (q *eventQueue) dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.coalesced
}

// pump delivers queued events to out until ctx is done, then hands over
// what fits without blocking, stops accepting events and closes out.
func (q *eventQueue) pump(ctx context.Context, out chan<- Event) {
	defer close(out)
	for {
		e, ok := q.pop()
		if !ok {
			select {
			case <-q.notify:
				continue
			case <-ctx.Done():
				q.finish(out)
				return
			}
		}
		select {
		case out <- e:
		case <-ctx.Done():
			q.mu.Lock()
			q.items = append([]Event{e}, q.items...)
			q.mu.Unlock()
			q.finish(out)
			return
		}
	}
}

func (q *eventQueue) finish(out chan<- Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for len(q.items) > 0 {
		select {
		case out <- q.items[0]:
			q.items = q.items[1:]
		default:
			return
		}
	}
}
