// Package action defines the side effects of holding the active role and
// the pipeline that runs them in order, with timeouts, timings and repair.
package action

import "context"

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
