// Package peerview lets each node of a pair show the other's own view:
// its status (paths as it sees them, its failover timeline) fetched over
// the mutual-TLS peer link, so that a status page shows both sides of a
// failover. The peer answers one request per stream with one frame.
package peerview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/clock"
)

// Service is the peer-link service name.
const Service = "status"

// Frame types.
const (
	frameRequest = 1
	frameStatus  = 2
	frameError   = 3
)

// Stream is the part of a peer-link stream the view uses
// (*peerlink.Stream implements it).
type Stream interface {
	Send(typ uint8, payload []byte) error
	Recv() (uint8, []byte, error)
	SetDeadline(t time.Time) error
	Close() error
}

// Dialer opens a stream to the peer's status service.
type Dialer func(ctx context.Context) (Stream, error)

// Bounds of one request and of what the peer sends back.
const (
	// Timeout bounds one fetch: dial, request, answer.
	Timeout = 2 * time.Second
	// MaxAge is how long a fetched view is reused: a page open on several
	// screens, or refreshed after a burst of events, costs the peer one
	// request per MaxAge.
	MaxAge = time.Second
	// keepTransitions bounds the peer's timeline sent over the link.
	keepTransitions = 50
)

// Serve answers requests on st with status() until the peer closes the
// stream or ctx ends.
func Serve(ctx context.Context, st Stream, status func() api.Status) error {
	stop := context.AfterFunc(ctx, func() { _ = st.Close() })
	defer stop()
	defer st.Close()
	for {
		typ, _, err := st.Recv()
		if err != nil {
			return nil // the peer closed the stream, or ctx ended
		}
		if typ != frameRequest {
			return st.Send(frameError, []byte(fmt.Sprintf("unknown request type %d", typ)))
		}
		b, err := json.Marshal(Trim(status()))
		if err != nil {
			b, typ = []byte("encoding the status: "+err.Error()), frameError
		} else {
			typ = frameStatus
		}
		if err := st.Send(typ, b); err != nil {
			return fmt.Errorf("answering the peer's status request: %w", err)
		}
	}
}

// Trim keeps what the peer's view shows and bounds its size: the newest
// keepTransitions transitions, no subsystem details.
func Trim(st api.Status) api.Status {
	if n := len(st.Transitions); n > keepTransitions {
		st.Transitions = st.Transitions[n-keepTransitions:]
	}
	st.Subsystems = nil
	st.Actions = nil
	st.Hooks = nil
	return st
}

// Fetch asks the peer for its status once.
func Fetch(ctx context.Context, dial Dialer) (api.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	st, err := dial(ctx)
	if err != nil {
		return api.Status{}, fmt.Errorf("fetching the peer's status: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := st.Send(frameRequest, nil); err != nil {
		return api.Status{}, fmt.Errorf("fetching the peer's status: %w", err)
	}
	typ, b, err := st.Recv()
	if err != nil {
		return api.Status{}, fmt.Errorf("fetching the peer's status: reading the answer: %w", err)
	}
	switch typ {
	case frameStatus:
	case frameError:
		return api.Status{}, fmt.Errorf("fetching the peer's status: the peer answered: %s", b)
	default:
		return api.Status{}, fmt.Errorf("fetching the peer's status: unexpected frame type %d", typ)
	}
	var s api.Status
	if err := json.Unmarshal(b, &s); err != nil {
		return api.Status{}, fmt.Errorf("fetching the peer's status: decoding the answer: %w", err)
	}
	return s, nil
}

// View is the peer's status as last fetched, reused for MaxAge. Use New.
type View struct {
	dial Dialer
	clk  clock.Clock

	mu      sync.Mutex
	fetch   chan struct{} // non-nil while a fetch runs; closed when it ends
	tried   time.Time     // when the last fetch ended
	err     error         // its error
	status  api.Status    // the last status fetched
	fetched time.Time     // when; zero before the first
}

// New returns a view that fetches through dial.
func New(dial Dialer, clk clock.Clock) *View {
	if clk == nil {
		clk = clock.Real{}
	}
	return &View{dial: dial, clk: clk}
}

// ErrNoLink is the view's error when the peer link is not configured.
var ErrNoLink = errors.New("the peer link is not configured (link section): the peer's own view needs it")

// Get returns the peer's last status, when it was fetched, and the error
// of the last attempt. When the last attempt is older than MaxAge it
// starts a fetch (one at a time, bounded by Timeout) and waits for it
// until ctx ends: a page renders with what it has rather than wait for a
// peer that is gone. After a failure it keeps the last status fetched
// (zero time when none was). A nil View returns ErrNoLink.
func (v *View) Get(ctx context.Context) (api.Status, time.Time, error) {
	if v == nil {
		return api.Status{}, time.Time{}, ErrNoLink
	}
	v.mu.Lock()
	ch := v.fetch
	if ch == nil && (v.tried.IsZero() || v.clk.Now().Sub(v.tried) >= MaxAge) {
		ch = make(chan struct{})
		v.fetch = ch
		go v.refresh(ch)
	}
	v.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tried.IsZero() {
		return api.Status{}, time.Time{}, errors.New("the peer has not answered yet")
	}
	return v.status, v.fetched, v.err
}

// refresh fetches the peer's status and closes done.
func (v *View) refresh(done chan struct{}) {
	s, err := Fetch(context.Background(), v.dial) // bounded by Timeout
	now := v.clk.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fetch = nil
	close(done)
	v.tried, v.err = now, err
	if err == nil {
		v.status, v.fetched = s, now
	}
}
