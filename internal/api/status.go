// Package api is baton's local control API: HTTP over a unix socket (and
// optionally TCP with a bearer token), and the Go client the CLI uses.
package api

import "time"

// Status is what `baton status` shows.
type Status struct {
	Node        string       `json:"node"`
	Version     string       `json:"version"`
	Role        string       `json:"role"`
	Term        uint64       `json:"term"`
	Reason      string       `json:"reason"`
	Since       time.Time    `json:"since"`
	Priority    int          `json:"priority"`
	Preempt     bool         `json:"preempt"`
	Maintenance bool         `json:"maintenance"`
	Handover    bool         `json:"handover"`
	Healthy     bool         `json:"healthy"`
	LastError   string       `json:"last_error,omitempty"`
	StartedAt   time.Time    `json:"started_at"`
	Peer        PeerStatus   `json:"peer"`
	Probe       *ProbeStatus `json:"probe,omitempty"`
	Checks      []Check      `json:"checks"`
	Actions     []Action     `json:"actions"`
	Transitions []Transition `json:"transitions"`
	Hooks       []Hook       `json:"hooks,omitempty"`
	// HooksDropped counts transitions whose hooks never ran because the
	// hook queue was full (a hook slower than the transitions).
	HooksDropped uint64 `json:"hooks_dropped,omitempty"`
	// Subsystems holds each optional subsystem's own status (sessions,
	// configsync, bgp, routes, ...).
	Subsystems map[string]any `json:"subsystems,omitempty"`
	Witness    *Witness       `json:"witness,omitempty"`
	// LinksDown are tracked interfaces that are down; LinksRising are up
	// again for less than node.link_rise.
	LinksDown   []string `json:"links_down,omitempty"`
	LinksRising []string `json:"links_rising,omitempty"`
	// Reassertions counts re-assertions of the active role by cause;
	// LastReassertion is the latest.
	Reassertions    map[string]uint64 `json:"reassertions,omitempty"`
	LastReassertion *Reassertion      `json:"last_reassertion,omitempty"`
}

// Reassertion is one re-run of every action's announce-and-verify by the
// active node.
type Reassertion struct {
	Cause string    `json:"cause"`
	At    time.Time `json:"at"`
	Term  uint64    `json:"term"`
}

// Witness is the lease this node must hold to be active.
type Witness struct {
	Type    string `json:"type"`
	Holding bool   `json:"holding"`
	Waiting bool   `json:"waiting"` // the rules would make this node active; it waits for the lease
	// HoldingByPeer: active without the lease (the witness is unreachable)
	// while the peer, heard, defers to it.
	HoldingByPeer bool    `json:"holding_by_peer,omitempty"`
	Holder        string  `json:"holder,omitempty"`
	Token         uint64  `json:"token,omitempty"`
	TimeLeftMs    float64 `json:"time_left_ms,omitempty"`
	Renewals      uint64  `json:"renewals"`
	RenewFailures uint64  `json:"renew_failures"`
	LastError     string  `json:"last_error,omitempty"`
}

// PeerStatus is the peer as this node sees it.
type PeerStatus struct {
	Name        string            `json:"name"`
	Alive       bool              `json:"alive"`
	Gone        bool              `json:"gone,omitempty"`
	Role        string            `json:"role,omitempty"`
	Term        uint64            `json:"term,omitempty"`
	Priority    int               `json:"priority,omitempty"`
	Healthy     bool              `json:"healthy"`
	Maintenance bool              `json:"maintenance,omitempty"`
	LastHeard   time.Time         `json:"last_heard,omitempty"`
	Paths       []Path            `json:"paths"`
	Drops       map[string]uint64 `json:"drops,omitempty"`
}

// Path is one path to the peer.
type Path struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Up        bool      `json:"up"`
	RTTMillis float64   `json:"rtt_ms"`
	LastHeard time.Time `json:"last_heard,omitempty"`
	Sent      uint64    `json:"sent"`
	Received  uint64    `json:"received"`
	LastError string    `json:"last_error,omitempty"`
	// RTTHistory is the round trip sampled every 10 s over the last
	// 10 minutes, oldest first; -1 while the path was down.
	RTTHistory []float64 `json:"rtt_history_ms,omitempty"`
}

// ProbeStatus is the load-balancer health-probe responder.
type ProbeStatus struct {
	Mode       string    `json:"mode"`
	Listen     string    `json:"listen"`
	Answering  int       `json:"answering"` // 200 or 503 (tcp: 200 = listening)
	State      string    `json:"state"`     // connected | unconnected
	LastProbe  time.Time `json:"last_probe,omitempty"`
	LastSource string    `json:"last_source,omitempty"`
	Count200   uint64    `json:"count_200"`
	Count503   uint64    `json:"count_503"`
}

// Check is one local health check.
type Check struct {
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Healthy    bool      `json:"healthy"`
	LastResult string    `json:"last_result,omitempty"`
	LastRun    time.Time `json:"last_run,omitempty"`
}

// Action is the last result of one action.
type Action struct {
	Name       string    `json:"name"`
	Op         string    `json:"op"`
	OK         bool      `json:"ok"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
	DurationMs float64   `json:"duration_ms"`
	Attempts   int       `json:"attempts"`
}

// Transition is one role change with the time each action took.
type Transition struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	Detail string    `json:"detail,omitempty"`
	Term   uint64    `json:"term"`
	// DetectedMs is the time from the detection to this decision: from
	// the last heartbeat heard (peer_lost) or the channel's close
	// (peer_gone).
	DetectedMs float64 `json:"detected_ms,omitempty"`
	Steps      []Step  `json:"steps,omitempty"`
	TotalMs    float64 `json:"total_ms,omitempty"`
}

// Step is one action of a takeover, timed from the decision.
type Step struct {
	Action   string  `json:"action"`
	Op       string  `json:"op"`
	OK       bool    `json:"ok"`
	Error    string  `json:"error,omitempty"`
	Attempts int     `json:"attempts,omitempty"` // more than 1: retried
	Ms       float64 `json:"ms"`                 // the action's own duration
	DoneAtMs float64 `json:"done_at_ms"`         // since the decision
	// Parts are the step's targets where it has several: each route
	// table, each address.
	Parts []StepPart `json:"parts,omitempty"`
}

// StepPart is one target of a step: a route table, an address.
type StepPart struct {
	Target   string  `json:"target"`
	OK       bool    `json:"ok"`
	Error    string  `json:"error,omitempty"`
	Attempts int     `json:"attempts,omitempty"` // calls made; more than 1: retried
	Ms       float64 `json:"ms"`
	DoneAtMs float64 `json:"done_at_ms"` // since the decision
}

// Hook is the last run of one hook.
type Hook struct {
	Path       string  `json:"path"`
	State      string  `json:"state"`
	ExitCode   int     `json:"exit_code"`
	DurationMs float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`
}
