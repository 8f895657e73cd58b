package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/feed"
	"github.com/batonha/baton/internal/heartbeat"
	"github.com/batonha/baton/internal/httpserve"
	"github.com/batonha/baton/internal/store"
)

// The transition history kept on disk: a day of transitions, at most
// historyMax of them.
const (
	historyKeep = 24 * time.Hour
	historyMax  = 500
	historyFile = "transitions.json"
)

// history is the failover timeline: the transitions of the last day with
// the steps of the takeover each one decided, saved under state_dir by
// its own goroutine (the role loop only appends in memory).
type history struct {
	path string
	clk  clock.Clock
	log  *slog.Logger
	kick chan struct{}

	mu      sync.Mutex
	list    []api.Transition
	pending []action.Run // runs that finished before their transition was added
}

func loadHistory(dir string, clk clock.Clock, log *slog.Logger) (*history, error) {
	h := &history{path: filepath.Join(dir, historyFile), clk: clk, log: log, kick: make(chan struct{}, 1)}
	b, err := os.ReadFile(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading transition history: %w", err)
	}
	if err := json.Unmarshal(b, &h.list); err != nil {
		// A damaged history must not stop a node from starting.
		log.Warn("ignoring a damaged transition history", "path", h.path, "err", err)
		h.list = nil
	}
	h.pruneLocked()
	return h, nil
}

// add records transitions. It returns those that a run already finished
// for, with its steps.
func (h *history) add(trs ...api.Transition) (done []api.Transition) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list = append(h.list, trs...)
	h.pruneLocked()
	runs := h.pending
	h.pending = nil
	for _, run := range runs {
		if tr, ok := h.attachLocked(run); ok {
			done = append(done, tr)
		} else {
			h.pending = append(h.pending, run)
		}
	}
	h.save()
	return done
}

// attach gives a finished pipeline run to the transition that decided it;
// a run whose transition is not recorded yet waits for it.
func (h *history) attach(run action.Run) (api.Transition, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tr, ok := h.attachLocked(run)
	if !ok {
		h.pending = append(h.pending, run)
		if len(h.pending) > 4 {
			h.pending = h.pending[1:]
		}
		return tr, false
	}
	h.save()
	return tr, true
}

func (h *history) attachLocked(run action.Run) (api.Transition, bool) {
	for i := len(h.list) - 1; i >= 0; i-- {
		tr := &h.list[i]
		if !tr.At.Equal(run.Decided) || tr.Term != run.Term {
			continue
		}
		tr.Steps = tr.Steps[:0]
		for _, s := range run.Steps {
			st := api.Step{Action: s.Action, Op: s.Op, OK: s.OK, Error: s.Error,
				Attempts: s.Attempts, Ms: ms(s.Duration), DoneAtMs: ms(s.Started.Add(s.Duration).Sub(run.Decided))}
			for _, p := range s.Parts {
				st.Parts = append(st.Parts, api.StepPart{Target: p.Target, OK: p.OK, Error: p.Error, Attempts: p.Attempts,
					Ms: ms(p.Duration), DoneAtMs: ms(p.Started.Add(p.Duration).Sub(run.Decided))})
			}
			tr.Steps = append(tr.Steps, st)
		}
		tr.TotalMs = ms(run.Finished.Sub(run.Decided))
		return *tr, true
	}
	return api.Transition{}, false
}

// save asks the saver to write the history.
func (h *history) save() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run writes the history whenever it changed, until ctx ends, then once
// more.
func (h *history) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			h.write()
			return
		case <-h.kick:
			h.write()
		}
	}
}

func (h *history) write() {
	h.mu.Lock()
	b, err := json.Marshal(h.list)
	h.mu.Unlock()
	if err == nil {
		err = store.WriteFileAtomic(h.path, b, 0o600)
	}
	if err != nil {
		h.log.Error("saving transition history", "path", h.path, "err", err)
	}
}

// transitions returns the history, oldest first.
func (h *history) transitions() []api.Transition {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pruneLocked()
	out := make([]api.Transition, len(h.list))
	for i, tr := range h.list {
		tr.Steps = append([]api.Step(nil), tr.Steps...)
		out[i] = tr
	}
	return out
}

func (h *history) pruneLocked() {
	cut := h.clk.Now().Add(-historyKeep)
	i := 0
	for i < len(h.list) && h.list[i].At.Before(cut) {
		i++
	}
	i = max(i, len(h.list)-historyMax)
	if i > 0 {
		h.list = append([]api.Transition(nil), h.list[i:]...)
	}
}

// Samples: every sampleEvery the round trip of each path is recorded for
// the status page's sparklines (10 minutes of them).
const (
	sampleEvery = 10 * time.Second
	sampleKeep  = 60
)

// sampler keeps the recent round trips of each heartbeat path and check,
// and turns changes in the drop counters into events.
type sampler struct {
	mu    sync.Mutex
	rtt   map[string][]float64 // path name -> ms, -1 while down; oldest first
	drops map[string]uint64
	// lastRefusal is the newest config sync refusal published (owned by
	// the sampler's goroutine).
	lastRefusal time.Time
}

func newSampler() *sampler {
	return &sampler{rtt: map[string][]float64{}, drops: map[string]uint64{}}
}

// sample records one round of hs and returns the drops since the last.
func (s *sampler) sample(hs heartbeat.Status) map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range hs.Paths {
		v := -1.0
		if p.Up {
			v = ms(p.RTT)
		}
		r := append(s.rtt[p.Name], v)
		if len(r) > sampleKeep {
			r = r[len(r)-sampleKeep:]
		}
		s.rtt[p.Name] = r
	}
	var delta map[string]uint64
	for k, v := range hs.Drops {
		if v > s.drops[k] {
			if delta == nil {
				delta = map[string]uint64{}
			}
			delta[k] = v - s.drops[k]
		}
		s.drops[k] = v
	}
	return delta
}

func (s *sampler) history(path string) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]float64(nil), s.rtt[path]...)
}

// runSampler samples the heartbeat paths until ctx ends.
func (d *Daemon) runSampler(ctx context.Context) {
	t := d.clk.NewTimer(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			t.Reset(sampleEvery)
		}
		hs := d.hb.Status()
		drops := d.samples.sample(hs)
		if drops != nil {
			d.events.Publish(feed.TypeDrop, map[string]any{"peer": d.cfg.Peer.Name, "drops": drops})
		}
		paths := make(map[string]float64, len(hs.Paths))
		for _, p := range hs.Paths {
			v := -1.0
			if p.Up {
				v = ms(p.RTT)
			}
			paths[p.Name] = v
		}
		d.events.Publish(feed.TypeSamples, map[string]any{"rtt_ms": paths})
		d.publishSyncRefusals()
	}
}

// publishSyncRefusals publishes the files config sync refused (here or
// at the peer) since the last sample.
func (d *Daemon) publishSyncRefusals() {
	for _, sub := range d.subsystems {
		cs, ok := sub.(*configSync)
		if !ok {
			continue
		}
		for _, ev := range cs.s.Status(false).Events {
			if !ev.At.After(d.samples.lastRefusal) || !strings.Contains(ev.Kind, "refused") {
				continue
			}
			d.samples.lastRefusal = ev.At
			d.events.Publish(feed.TypeSyncRefusal, map[string]any{"kind": ev.Kind, "set": ev.Set, "key": ev.Path, "error": ev.Detail})
		}
	}
}

// publishTransitions records the loop's transitions in the history and
// publishes them.
func (d *Daemon) publishTransitions(trs []api.Transition) {
	done := d.history.add(trs...)
	for _, tr := range trs {
		d.events.Publish(feed.TypeTransition, tr)
	}
	for _, tr := range done {
		d.events.Publish(feed.TypeTakeover, tr)
	}
}

// onRun is the pipeline's report of a finished activation or deactivation.
func (d *Daemon) onRun(run action.Run) {
	if tr, ok := d.history.attach(run); ok {
		d.events.Publish(feed.TypeTakeover, tr)
	}
}

// publishStep publishes one finished action step (reconcile runs too).
func (d *Daemon) publishStep(op string, r action.Result, since time.Duration) {
	ev := map[string]any{"action": r.Action, "op": op, "ok": r.OK, "ms": ms(r.Duration), "attempts": r.Attempts}
	if r.Error != "" {
		ev["error"] = r.Error
	}
	if since >= 0 {
		ev["done_at_ms"] = ms(since)
	}
	if op == "verify" && r.OK {
		return // a verify that passed is no news
	}
	d.events.Publish(feed.TypeAction, ev)
}

// publishHeartbeat publishes the peer's and the paths' changes.
func (d *Daemon) publishHeartbeat(ev heartbeat.Event) {
	switch ev.Kind {
	case heartbeat.EventPathUp, heartbeat.EventPathDown:
		d.events.Publish(feed.TypePath, map[string]any{"peer": d.cfg.Peer.Name, "path": ev.Path,
			"up": ev.Kind == heartbeat.EventPathUp})
	case heartbeat.EventPeerAlive, heartbeat.EventPeerDead:
		d.events.Publish(feed.TypePeer, map[string]any{"peer": d.cfg.Peer.Name, "path": ev.Path,
			"alive": ev.Kind == heartbeat.EventPeerAlive, "gone": ev.Gone, "leaving": ev.Leaving})
	}
}

// listenUI binds ui.listen: the API's token-checked handler (the status
// page, its event stream and the commands it sends) on an address of its
// own, with the API's TLS. It returns what serves it, or nil when
// ui.listen is not set.
func (d *Daemon) listenUI(apiSrv *api.Server) (func(context.Context), error) {
	if d.cfg.UI.Listen == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", d.cfg.UI.Listen)
	if err != nil {
		return nil, fmt.Errorf("binding the status page listener %s (ui.listen): %w", d.cfg.UI.Listen, err)
	}
	d.log.Info("status page listening", "addr", l.Addr().String())
	lim := httpserve.Limit(l, 0)
	d.metrics.CountDrops("ui", lim.Dropped)
	var ln net.Listener = lim
	if t := d.cfg.APITLS(); t.CertFile != "" {
		if ln, err = httpserve.TLS(ln, t.CertFile, t.KeyFile); err != nil {
			l.Close()
			return nil, fmt.Errorf("status page listener %s (ui.listen): %w", d.cfg.UI.Listen, err)
		}
	}
	srv := httpserve.New(apiSrv.Handler(true))
	return func(ctx context.Context) {
		go func() { <-ctx.Done(); srv.Close() }()
		_ = srv.Serve(ln)
	}, nil
}
