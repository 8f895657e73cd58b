package role

import "fmt"

// State is a node's role.
type State uint8

const (
	Init State = iota
	Standby
	Active
	Fault
	Maintenance
)

var stateNames = [...]string{"INIT", "STANDBY", "ACTIVE", "FAULT", "MAINTENANCE"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("STATE(%d)", uint8(s))
}

// PeerInfo is what the peer last told us about itself in a heartbeat.
type PeerInfo struct {
	Name        string
	State       State
	Term        uint64
	Priority    int
	Healthy     bool // its local checks pass
	Maintenance bool
	Handover    bool // it is active and asks us to take over (switchover)
	Preempt     bool
	Yielding    bool // it stepped down for a switchover (witness mode) and hands the role over
}
