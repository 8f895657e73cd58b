// Package hostevents watches the cloud's instance metadata service for
// planned host events — Azure Scheduled Events, AWS spot interruptions,
// rebalance recommendations and scheduled maintenance — and drains the
// node before the platform acts: the active hands over to a healthy
// standby, the node enters MAINTENANCE, and (Azure) the event is
// acknowledged so that the platform proceeds early.
package hostevents

import (
	"context"
	"time"
)

// Event is one planned event that concerns this VM.
type Event struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // Azure EventType (Reboot, Freeze, …); AWS spot, rebalance or the maintenance code
	// Status is Azure's EventStatus (Scheduled, Started) or AWS's state.
	Status    string    `json:"status,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	// Duration is the expected impact, 0 when the platform does not say.
	Duration time.Duration `json:"duration,omitempty"`
	// Ackable events can be started early (Azure StartRequests).
	Ackable bool `json:"-"`
}

// Azure's event types.
const (
	KindFreeze    = "Freeze"
	KindReboot    = "Reboot"
	KindRedeploy  = "Redeploy"
	KindPreempt   = "Preempt"
	KindTerminate = "Terminate"
)

// AWS's event kinds besides the scheduled-maintenance codes
// (system-reboot, instance-stop, …).
const (
	KindSpot      = "spot"
	KindRebalance = "rebalance"
)

// Source reads a metadata service.
type Source interface {
	// Events lists the pending events that concern this VM.
	Events(ctx context.Context) ([]Event, error)
	// Acknowledge lets the platform start ev now; sources without the
	// notion return nil.
	Acknowledge(ctx context.Context, ev Event) error
}
