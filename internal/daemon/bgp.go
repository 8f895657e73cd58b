package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/bgp"
	"github.com/batonha/baton/internal/role"
)

// buildBGP builds the BGP subsystem from the bgp section, or returns nil
// when the section is absent.
func (d *Daemon) buildBGP() (subsystem, error) {
	if d.cfg.BGP == nil {
		return nil, nil
	}
	sp, err := bgp.NewSpeaker(*d.cfg.BGP, d.log)
	if err != nil {
		return nil, fmt.Errorf("configuring BGP (bgp): %w", err)
	}
	b := bgp.New(*d.cfg.BGP, sp, d.clk, d.log)
	if err := d.metrics.Registry().Register(b.Collector()); err != nil {
		return nil, fmt.Errorf("registering BGP metrics: %w", err)
	}
	return &bgpSubsystem{b: b, mode: d.cfg.BGP.Mode}, nil
}

type bgpSubsystem struct {
	b    *bgp.BGP
	mode string
}

func (s *bgpSubsystem) Name() string { return "bgp" }

func (s *bgpSubsystem) Run(ctx context.Context) error { return s.b.Run(ctx) }

// Steps: in active-standby mode the announcement follows the active role
// through the pipeline, after addresses and routes; in active-active mode
// it follows health and maintenance through RoleChanged only.
func (s *bgpSubsystem) Steps() []action.Step {
	if s.mode != bgp.ModeActiveStandby {
		return nil
	}
	return []action.Step{{Action: s.b, Timeout: 5 * time.Second, Phase: action.PhaseAnnounce}}
}

func (s *bgpSubsystem) Status() any { return s.b.Status() }

func (s *bgpSubsystem) RoleChanged(snap role.Snapshot) { s.b.RoleChanged(snap) }

func (s *bgpSubsystem) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/bgp/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.b.Status())
	})
}
