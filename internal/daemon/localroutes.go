package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/localroutes"
	"github.com/batonha/baton/internal/peerlink"
)

// localRoutes is the local_routes action: the peer's kernel routes,
// copied over the peer link and installed on takeover.
type localRoutes struct {
	*localroutes.Sync
}

func (l localRoutes) Steps() []action.Step {
	return []action.Step{{Action: l.Sync, Timeout: 10 * time.Second, Phase: action.PhaseRoutes}}
}

// buildLocalRoutes builds the action from its section, or returns nil
// when it is absent.
func (d *Daemon) buildLocalRoutes() (subsystem, error) {
	if d.cfg.LocalRoutes == nil {
		return nil, nil
	}
	if d.link == nil {
		return nil, errors.New("local routes (local_routes) need the peer link: configure the link section")
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("local routes: opening netlink: %w", err)
	}
	s, err := localroutes.New(*d.cfg.LocalRoutes, localroutes.Options{
		Kernel: localroutes.NewNetlink(h, netns.None()), Clock: d.clk, Logger: d.log,
		Dial: func(ctx context.Context) (localroutes.Stream, error) {
			st, err := d.link.Dial(ctx, localroutes.Service)
			if err != nil {
				return nil, err
			}
			return st, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("configuring local routes (local_routes): %w", err)
	}
	d.link.Handle(localroutes.Service, func(ctx context.Context, st *peerlink.Stream) { s.Serve(ctx, st) })
	return localRoutes{s}, nil
}
