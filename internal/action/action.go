// Package action defines the side effects of holding the active role and
// the pipeline that runs them in order, with timeouts, timings and repair.
package action

import (
	"context"
	"errors"
)

// Takeover describes why and under which term a node is (de)activating.
type Takeover struct {
	Term   uint64 // the role term; grows on every takeover
	Reason string // the role machine's reason for the transition
	Token  uint64 // witness fencing token, 0 when no witness is configured
}

// Action is one side effect of the active role (answering a probe,
// pointing routes, holding a VIP, announcing prefixes, ...).
type Action interface {
	// Name is short and stable: "probe", "routes", "vip", ...
	Name() string
	// Activate makes the world point at this node. It must be idempotent.
	Activate(ctx context.Context, t Takeover) error
	// Deactivate undoes Activate as far as this node owns it. Idempotent.
	Deactivate(ctx context.Context, t Takeover) error
	// Verify checks that the world still matches the role this node holds
	// (active when active is true) and repairs drift; it returns an error
	// only when it could not repair.
	Verify(ctx context.Context, active bool) error
}

// ErrFault marks an Activate error after which this node must not hold
// the active role (a VIP another host owns, a refused fencing token): the
// daemon moves the node to FAULT with the error as the reason.
var ErrFault = errors.New("this node cannot hold the active role")

// Fault wraps err so that errors.Is(err, ErrFault) holds.
func Fault(err error) error { return &faultError{err} }

type faultError struct{ err error }

func (e *faultError) Error() string        { return e.err.Error() }
func (e *faultError) Unwrap() error        { return e.err }
func (e *faultError) Is(target error) bool { return target == ErrFault }

// FaultOn returns a that turns Activate and Verify errors matching match
// into faults.
func FaultOn(a Action, match error) Action { return &faultOn{Action: a, match: match} }

type faultOn struct {
	Action
	match error
}

func (f *faultOn) wrap(err error) error {
	if err != nil && errors.Is(err, f.match) {
		return Fault(err)
	}
	return err
}

func (f *faultOn) Activate(ctx context.Context, t Takeover) error {
	return f.wrap(f.Action.Activate(ctx, t))
}

func (f *faultOn) Verify(ctx context.Context, active bool) error {
	return f.wrap(f.Action.Verify(ctx, active))
}
