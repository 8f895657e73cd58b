package daemon

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/role"
)

// subsystem is an optional part of the daemon — session sync, config
// sync, BGP, cloud actions — built from its config section. Each lives in
// its own file here (sessions.go, configsync.go, bgp.go, cloud.go) with a
// build function that returns nil when its section is absent.
type subsystem interface {
	Name() string
	// Run runs until ctx ends; an error stops the daemon.
	Run(ctx context.Context) error
	// Steps are the actions it adds to the takeover pipeline.
	Steps() []action.Step
	// Status is shown under "subsystems" in `baton status --json`.
	Status() any
}

// roleObserver is implemented by subsystems that follow the role. The
// loop calls RoleChanged after every change; it must not block.
type roleObserver interface {
	RoleChanged(s role.Snapshot)
}

// apiRoutes is implemented by subsystems with API endpoints of their own,
// registered under /v1/NAME/.
type apiRoutes interface {
	Routes(mux *http.ServeMux)
}

// buildSubsystems builds every configured subsystem, in pipeline order.
func (d *Daemon) buildSubsystems() error {
	for _, build := range []func() (subsystem, error){
		d.buildSessionSync,
		d.buildConfigSync,
		d.buildCloud,
		d.buildBGP,
		d.buildPeerings,
		d.buildEvents,
		d.buildDNS,
		d.buildLocalRoutes,
	} {
		s, err := build()
		if err != nil {
			return err
		}
		if s != nil {
			d.subsystems = append(d.subsystems, s)
		}
	}
	return nil
}

func (d *Daemon) subsystemRoutes(mux *http.ServeMux) {
	for _, s := range d.subsystems {
		if r, ok := s.(apiRoutes); ok {
			r.Routes(mux)
		}
	}
}

func (d *Daemon) subsystemStatus() map[string]any {
	if len(d.subsystems) == 0 {
		return nil
	}
	out := map[string]any{}
	for _, s := range d.subsystems {
		out[s.Name()] = s.Status()
	}
	return out
}

func (d *Daemon) notifySubsystems(s role.Snapshot) {
	for _, sub := range d.subsystems {
		if o, ok := sub.(roleObserver); ok {
			o.RoleChanged(s)
		}
	}
}

// runSubsystems starts every subsystem; the returned wait blocks until
// all have returned (after ctx ends).
func (d *Daemon) runSubsystems(ctx context.Context, errc chan<- error) (wait func()) {
	var wg sync.WaitGroup
	for _, s := range d.subsystems {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", s.Name(), err)
			}
		}()
	}
	return wg.Wait
}
