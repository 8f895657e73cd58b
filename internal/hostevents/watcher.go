package hostevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/role"
	"github.com/batonha/baton/internal/store"
)

// Node is what the watcher drives: the daemon's operator commands.
type Node interface {
	// Switchover hands the active role to the peer; it returns once the
	// role moved.
	Switchover(ctx context.Context) error
	// Maintenance enters (on) or leaves MAINTENANCE.
	Maintenance(ctx context.Context, on bool) error
}

// Options are the watcher's collaborators.
type Options struct {
	Source Source // nil: built from the config
	Node   Node
	Clock  clock.Clock
	Logger *slog.Logger
	// LossTolerance is how long the peer may go unheard before it takes
	// over (heartbeat misses × interval): a Freeze of the active that
	// may last longer is drained like a reboot.
	LossTolerance time.Duration
	// Peerless says the node has no peer (a scale-set instance announcing
	// over BGP in active-active mode): an active node drains by entering
	// MAINTENANCE at once, which withdraws its announcements while the
	// other instances carry the traffic; there is no one to hand over to.
	Peerless bool
	// StateDir keeps hostevents.json, the events already drained for,
	// so that a restarted node does not drain again for the same event.
	StateDir string
}

// Watcher polls the metadata service and drains the node for events
// that concern it.
type Watcher struct {
	cfg  Config
	opt  Options
	src  Source
	log  *slog.Logger
	path string

	mu       sync.Mutex
	snap     role.Snapshot
	handled  map[string]*handled // by event ID
	current  []Event
	lastPoll time.Time
	lastErr  string
	polls    uint64
}

// handled is what the watcher did about one event.
type handled struct {
	Event        Event  `json:"event"`
	Drained      bool   `json:"drained"`      // handed over and in MAINTENANCE
	Maintenance  bool   `json:"maintenance"`  // the watcher put the node in MAINTENANCE
	Acknowledged bool   `json:"acknowledged"` // StartRequests accepted
	Ignored      string `json:"ignored,omitempty"`
	Waiting      string `json:"waiting,omitempty"` // why it neither drains nor acknowledges yet
	Error        string `json:"error,omitempty"`
}

// New builds a watcher; nothing is read before Run.
func New(cfg Config, opt Options) (*Watcher, error) {
	if opt.Node == nil || opt.Clock == nil || opt.Logger == nil {
		return nil, errors.New("hostevents: Node, Clock and Logger are required")
	}
	w := &Watcher{cfg: cfg, opt: opt, src: opt.Source, log: opt.Logger.With("subsystem", "events", "cloud", cfg.Cloud),
		handled: map[string]*handled{}}
	if w.src == nil {
		client := &http.Client{Timeout: cfg.Timeout}
		switch cfg.Cloud {
		case "azure":
			w.src = NewAzure(cfg.Endpoint, cfg.VMName, client)
		case "aws":
			w.src = NewAWS(cfg.Endpoint, client, opt.Clock)
		default:
			return nil, fmt.Errorf("events.cloud: %q is not aws or azure", cfg.Cloud)
		}
	}
	if opt.StateDir != "" {
		w.path = filepath.Join(opt.StateDir, "hostevents.json")
		if err := w.load(); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *Watcher) load() error {
	data, err := os.ReadFile(w.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", w.path, err)
	}
	if err := json.Unmarshal(data, &w.handled); err != nil {
		return fmt.Errorf("decoding %s: %w", w.path, err)
	}
	return nil
}

// save writes the handled events; the caller holds mu.
func (w *Watcher) save() {
	if w.path == "" {
		return
	}
	data, err := json.Marshal(w.handled)
	if err == nil {
		err = store.WriteFileAtomic(w.path, data, 0o600)
	}
	if err != nil {
		w.log.Error("saving the handled host events", "path", w.path, "err", err)
	}
}

// Name is the subsystem's name.
func (w *Watcher) Name() string { return "events" }

// RoleChanged records the role; it does not block.
func (w *Watcher) RoleChanged(s role.Snapshot) {
	w.mu.Lock()
	w.snap = s
	w.mu.Unlock()
}

// Run polls every events.poll until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	for {
		w.Poll(ctx)
		if err := clock.Sleep(ctx, w.opt.Clock, w.cfg.Poll); err != nil {
			return nil
		}
	}
}

// Poll reads the metadata service once and acts on what it lists.
func (w *Watcher) Poll(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	events, err := w.src.Events(pctx)
	cancel()
	w.mu.Lock()
	w.polls++
	w.lastPoll = w.opt.Clock.Now()
	if err != nil {
		if w.lastErr != err.Error() {
			w.log.Warn("reading planned host events", "err", err)
		}
		w.lastErr = err.Error()
		w.mu.Unlock()
		return
	}
	w.lastErr = ""
	w.current = events
	w.mu.Unlock()

	for _, ev := range events {
		w.handle(ctx, ev)
	}
	w.finish(ctx, events)
}

func peerReady(s role.Snapshot) bool {
	return s.PeerAlive && s.PeerKnown && s.Peer.State == role.Standby && s.Peer.Healthy && !s.Peer.Maintenance
}

// handOver moves the active role to a healthy standby peer for ev, or
// records why it cannot (then the event waits, unacknowledged).
func (w *Watcher) handOver(ctx context.Context, ev Event, h *handled, snap role.Snapshot, set func(func(*handled))) bool {
	if !peerReady(snap) {
		why := "the peer is not a healthy standby: staying active, not acknowledging (the platform's deadline runs)"
		if h.Waiting != why {
			w.log.Warn("planned host event: cannot hand over", "id", ev.ID, "kind", ev.Kind, "not_before", ev.NotBefore,
				"peer_alive", snap.PeerAlive, "peer_state", snap.Peer.State.String(), "peer_healthy", snap.Peer.Healthy)
		}
		set(func(h *handled) { h.Waiting = why })
		return false
	}
	w.log.Info("planned host event: handing over", "id", ev.ID, "kind", ev.Kind)
	if err := w.opt.Node.Switchover(ctx); err != nil {
		w.log.Warn("planned host event: switchover failed", "id", ev.ID, "err", err)
		set(func(h *handled) { h.Error = "switchover: " + err.Error() })
		return false
	}
	return true
}

// handle drains the node for one event, once.
func (w *Watcher) handle(ctx context.Context, ev Event) {
	w.mu.Lock()
	h := w.handled[ev.ID]
	if h == nil {
		h = &handled{Event: ev}
		w.handled[ev.ID] = h
		w.log.Info("planned host event", "id", ev.ID, "kind", ev.Kind, "status", ev.Status, "not_before", ev.NotBefore)
	}
	h.Event = ev
	snap := w.snap
	w.mu.Unlock()
	if h.Ignored != "" || (h.Drained && (h.Acknowledged || !ev.Ackable)) {
		return
	}

	set := func(f func(h *handled)) {
		w.mu.Lock()
		f(h)
		w.save()
		w.mu.Unlock()
	}
	if !h.Drained {
		if ev.Kind == KindFreeze && (snap.State != role.Active || (ev.Duration > 0 && ev.Duration < w.opt.LossTolerance)) {
			// A short pause of the active, or any pause of a standby: the
			// loss tolerance (or the witness) covers it.
			reason := fmt.Sprintf("a freeze of %s shorter than the loss tolerance (%s)", ev.Duration, w.opt.LossTolerance)
			if snap.State != role.Active {
				reason = "a freeze of a node that is not active"
			}
			w.log.Info("planned host event needs no drain", "id", ev.ID, "kind", ev.Kind, "why", reason)
			set(func(h *handled) { h.Ignored = reason })
			return
		}
		switch snap.State {
		case role.Active:
			if w.opt.Peerless {
				w.log.Info("planned host event: no peer, withdrawing (the other instances carry the traffic)", "id", ev.ID, "kind", ev.Kind)
			} else if !w.handOver(ctx, ev, h, snap, set) {
				return
			}
			fallthrough
		case role.Standby, role.Fault, role.Init:
			if err := w.opt.Node.Maintenance(ctx, true); err != nil {
				w.log.Warn("planned host event: entering maintenance failed", "id", ev.ID, "err", err)
				set(func(h *handled) { h.Error = "maintenance: " + err.Error() })
				return
			}
			set(func(h *handled) { h.Drained, h.Maintenance, h.Waiting, h.Error = true, true, "", "" })
		case role.Maintenance:
			set(func(h *handled) { h.Drained, h.Waiting, h.Error = true, "", "" })
		}
		w.log.Info("planned host event: drained", "id", ev.ID, "kind", ev.Kind)
	}
	if ev.Ackable && !h.Acknowledged {
		actx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		err := w.src.Acknowledge(actx, ev)
		cancel()
		if err != nil {
			w.log.Warn("planned host event: acknowledging failed", "id", ev.ID, "err", err)
			set(func(h *handled) { h.Error = err.Error() })
			return
		}
		w.log.Info("planned host event acknowledged: the platform may start it", "id", ev.ID, "kind", ev.Kind)
		set(func(h *handled) { h.Acknowledged, h.Error = true, "" })
	}
}

// finish forgets the events the metadata service no longer lists and,
// with events.resume, leaves the MAINTENANCE they caused.
func (w *Watcher) finish(ctx context.Context, events []Event) {
	w.mu.Lock()
	var over []*handled
	for id, h := range w.handled {
		if !slices.ContainsFunc(events, func(e Event) bool { return e.ID == id }) {
			over = append(over, h)
			delete(w.handled, id)
		}
	}
	if len(over) > 0 {
		w.save()
	}
	snap := w.snap
	w.mu.Unlock()
	for _, h := range over {
		w.log.Info("planned host event is over", "id", h.Event.ID, "kind", h.Event.Kind)
		if !h.Maintenance || !w.cfg.Resume || snap.State != role.Maintenance || w.stillDraining() {
			continue
		}
		w.log.Info("leaving maintenance after the planned host event (events.resume)", "id", h.Event.ID)
		if err := w.opt.Node.Maintenance(ctx, false); err != nil {
			w.log.Warn("leaving maintenance after a planned host event", "id", h.Event.ID, "err", err)
		}
	}
}

// stillDraining reports whether another event holds the node in MAINTENANCE.
func (w *Watcher) stillDraining() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.handled {
		if h.Maintenance {
			return true
		}
	}
	return false
}

// EventStatus is one event in the status.
type EventStatus struct {
	Event
	Drained      bool   `json:"drained"`
	Acknowledged bool   `json:"acknowledged"`
	Ignored      string `json:"ignored,omitempty"`
	Waiting      string `json:"waiting,omitempty"`
	Error        string `json:"error,omitempty"`
}

// Status is shown under subsystems.events.
type Status struct {
	Cloud     string        `json:"cloud"`
	Endpoint  string        `json:"endpoint"`
	Polls     uint64        `json:"polls"`
	LastPoll  time.Time     `json:"last_poll,omitzero"`
	LastError string        `json:"last_error,omitempty"`
	Events    []EventStatus `json:"events,omitempty"`
}

// Status reports the events in sight and what was done about them.
func (w *Watcher) Status() any { return w.status() }

func (w *Watcher) status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Status{Cloud: w.cfg.Cloud, Endpoint: w.cfg.Endpoint, Polls: w.polls, LastPoll: w.lastPoll, LastError: w.lastErr}
	for _, ev := range w.current {
		es := EventStatus{Event: ev}
		if h := w.handled[ev.ID]; h != nil {
			es.Drained, es.Acknowledged, es.Ignored, es.Waiting, es.Error = h.Drained, h.Acknowledged, h.Ignored, h.Waiting, h.Error
		}
		st.Events = append(st.Events, es)
	}
	return st
}
