package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/addresses"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/clock"
)

// cloud is the cloud failover subsystem: the `addresses` and `routes`
// actions on AWS or Azure.
type cloud struct {
	routes    *routes.Action
	addresses *addresses.Action
	steps     []action.Step
}

// buildCloud builds the cloud actions from the routes and addresses
// sections, or returns nil when neither is set.
func (d *Daemon) buildCloud() (subsystem, error) {
	if d.cfg.Routes == nil && d.cfg.Addresses == nil {
		return nil, nil
	}
	c := &cloud{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if d.cfg.Addresses != nil {
		a, err := addresses.New(ctx, *d.cfg.Addresses, addresses.Options{Logger: d.log, Clock: d.clk})
		if err != nil {
			return nil, fmt.Errorf("configuring cloud addresses: %w", err)
		}
		c.addresses = a
		c.steps = append(c.steps, action.Step{Action: a, Timeout: 5 * time.Minute, Phase: action.PhaseAddresses})
	}
	if d.cfg.Routes != nil {
		cfg := *d.cfg.Routes
		if cfg.StateDir == "" {
			cfg.StateDir = d.cfg.Node.StateDir
		}
		r, err := routes.New(ctx, cfg, routes.Options{Logger: d.log, Clock: d.clk, StateDir: cfg.StateDir})
		if err != nil {
			return nil, fmt.Errorf("configuring cloud routes: %w", err)
		}
		c.routes = r
		c.steps = append(c.steps, action.Step{
			Action: &throttledVerify{Action: r, every: cfg.Reconcile, clk: d.clk}, Timeout: 5 * time.Minute, Phase: action.PhaseRoutes,
		})
	}
	return c, nil
}

func (c *cloud) Name() string                  { return "cloud" }
func (c *cloud) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (c *cloud) Steps() []action.Step          { return c.steps }

// cloudStatus is shown under subsystems.cloud.
type cloudStatus struct {
	Routes    []routes.RouteStatus `json:"routes,omitempty"`
	Owned     []routes.Owned       `json:"owned_routes,omitempty"`
	Addresses []addresses.Change   `json:"addresses,omitempty"`
}

func (c *cloud) Status() any {
	var st cloudStatus
	if c.routes != nil {
		st.Routes, st.Owned = c.routes.Status(), c.routes.Owned()
	}
	if c.addresses != nil {
		st.Addresses = c.addresses.Status()
	}
	return st
}

// throttledVerify runs the wrapped action's Verify at most once per every:
// cloud APIs are rate limited, the pipeline reconciles more often.
type throttledVerify struct {
	action.Action
	every time.Duration
	clk   clock.Clock

	mu   sync.Mutex
	last time.Time
}

func (t *throttledVerify) Verify(ctx context.Context, active bool) error {
	if t.every <= 0 {
		return nil
	}
	t.mu.Lock()
	now := t.clk.Now()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		t.mu.Unlock()
		return nil
	}
	t.last = now
	t.mu.Unlock()
	return t.Action.Verify(ctx, active)
}
