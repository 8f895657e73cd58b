package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/configsync"
)

// buildConfigSync builds the subsystem from its config section, or returns nil
// when the section is absent.
func (d *Daemon) buildConfigSync() (subsystem, error) {
	c := d.cfg.Sync
	if c == nil || !c.Enabled {
		return nil, nil
	}
	if d.link == nil {
		return nil, errors.New("sync: configuration sync needs the peer link (configure the link section)")
	}
	s, err := configsync.New(configsync.Options{
		Config: *c, Node: d.cfg.Node.Name, Peer: d.cfg.Peer.Name, StateDir: d.cfg.Node.StateDir,
		Link: d.link, Clock: d.clk, Logger: d.log, Registry: d.metrics.Registry(),
	})
	if err != nil {
		return nil, err
	}
	return &configSync{s: s}, nil
}

// configSync adapts configsync.Syncer to the daemon's subsystem.
type configSync struct{ s *configsync.Syncer }

func (c *configSync) Name() string                  { return "sync" }
func (c *configSync) Run(ctx context.Context) error { return c.s.Run(ctx) }
func (c *configSync) Steps() []action.Step          { return nil }
func (c *configSync) Status() any                   { return c.s.Status(false) }

// Routes serves GET /v1/sync/status, POST /v1/sync/now and GET /v1/sync/diff.
func (c *configSync) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/sync/status", func(w http.ResponseWriter, r *http.Request) {
		syncWriteJSON(w, http.StatusOK, c.s.Status(r.URL.Query().Get("detail") != ""))
	})
	mux.HandleFunc("POST /v1/sync/now", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := c.s.SyncNow(ctx); err != nil {
			syncWriteJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error(), "status": c.s.Status(false)})
			return
		}
		syncWriteJSON(w, http.StatusOK, c.s.Status(false))
	})
	mux.HandleFunc("GET /v1/sync/diff", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		diff, err := c.s.Diff(ctx)
		if err != nil {
			syncWriteJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error()})
			return
		}
		syncWriteJSON(w, http.StatusOK, map[string]any{"files": diff})
	})
}

func syncWriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
