package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/role"
)

// commandKind is what an operator command asks the role loop to do.
type commandKind uint8

const (
	cmdSwitchover commandKind = iota + 1
	cmdMaintenance
)

// command is an operator command for the role loop; reply gets its
// answer.
type command struct {
	kind  commandKind
	on    bool // cmdMaintenance: on or off
	reply chan error
}

// Switchover implements api.Backend: it returns once the role moved, or
// with the reason it did not.
func (d *Daemon) Switchover(ctx context.Context) error {
	before := d.Status().Role
	if err := d.command(ctx, command{kind: cmdSwitchover}); err != nil {
		return err
	}
	return d.waitRole(ctx, func(s role.Snapshot) (bool, error) {
		if s.State.String() != before {
			return true, nil
		}
		if !s.Handover && s.LastError != "" {
			return true, fmt.Errorf("switchover: %s", s.LastError)
		}
		return false, nil
	})
}

// Maintenance implements api.Backend.
func (d *Daemon) Maintenance(ctx context.Context, on bool) error {
	if err := d.command(ctx, command{kind: cmdMaintenance, on: on}); err != nil {
		return err
	}
	if !on {
		return nil
	}
	return d.waitRole(ctx, func(s role.Snapshot) (bool, error) { return s.State == role.Maintenance, nil })
}

func (d *Daemon) command(ctx context.Context, c command) error {
	c.reply = make(chan error, 1)
	select {
	case d.cmdCh <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.stopped:
		return errors.New("baton is shutting down")
	}
	err := <-c.reply
	if errors.Is(err, role.ErrRefused) {
		return fmt.Errorf("%w: %v", api.ErrRefused, err)
	}
	return err
}

// waitRole waits until done says so of the published snapshot (it looks
// again each time the loop publishes one) or the handover deadline passes.
func (d *Daemon) waitRole(ctx context.Context, done func(role.Snapshot) (bool, error)) error {
	deadline := d.clk.NewTimer(max(5*time.Second, 5*time.Duration(d.cfg.Heartbeat.Misses)*d.cfg.Heartbeat.Interval))
	defer deadline.Stop()
	for {
		d.mu.Lock()
		s, changed := d.snap, d.snapCh
		d.mu.Unlock()
		if ok, err := done(s); ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-deadline.C():
			return errors.New("timed out waiting for the role to change")
		}
	}
}
