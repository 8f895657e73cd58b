package daemon

import (
	"fmt"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/hostevents"
)

// hostEvents is the planned-events subsystem: it drives the daemon's own
// Switchover and Maintenance commands and adds no pipeline steps.
type hostEvents struct{ *hostevents.Watcher }

func (hostEvents) Steps() []action.Step { return nil }

// buildEvents builds the watcher from the events section, or returns nil
// when it is absent.
func (d *Daemon) buildEvents() (subsystem, error) {
	if d.cfg.Events == nil {
		return nil, nil
	}
	w, err := hostevents.New(*d.cfg.Events, hostevents.Options{
		Node: d, Clock: d.clk, Logger: d.log, StateDir: d.cfg.Node.StateDir,
		LossTolerance: time.Duration(d.cfg.Heartbeat.Misses) * d.cfg.Heartbeat.Interval,
		Peerless:      d.cfg.Peer.Name == "",
	})
	if err != nil {
		return nil, fmt.Errorf("configuring planned host events (events): %w", err)
	}
	return hostEvents{w}, nil
}
