package partition

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Kind is one kind of fault.
type Kind string

// Fault kinds.
const (
	// CutNodes drops every packet between the two nodes (heartbeat link
	// and front path); both still reach the witness and the prober.
	CutNodes Kind = "cut_nodes"
	// CutWitness drops every packet between the target node and the
	// witness.
	CutWitness Kind = "cut_witness"
	// Isolate cuts the target node from its peer and the witness; only
	// the load balancer's prober still reaches it (the worst case for a
	// split brain: it can still attract traffic).
	Isolate Kind = "isolate"
	// Freeze stops the target's process (SIGSTOP) and resumes it
	// (SIGCONT): a frozen VM.
	Freeze Kind = "freeze"
	// Kill SIGKILLs the target's process and restarts it.
	Kill Kind = "kill"
)

// Target says which node a fault hits; it is resolved when the fault
// starts, from who is active then.
type Target int

// Targets.
const (
	TargetActive Target = iota
	TargetStandby
)

func (t Target) String() string {
	if t == TargetActive {
		return "active"
	}
	return "standby"
}

// Fault is one trial of the schedule.
type Fault struct {
	Kind   Kind
	Target Target
	// Dur is how long the fault lasts before it is healed (for Kill: how
	// long the node stays down before it is restarted).
	Dur time.Duration
	// Settle is the pause after the pair has converged before the fault.
	Settle time.Duration
}

func (f Fault) String() string {
	return fmt.Sprintf("%s %s for %v", f.Kind, f.Target, f.Dur.Round(time.Millisecond))
}

// ScheduleOptions shapes a schedule.
type ScheduleOptions struct {
	// Witness: whether node↔witness cuts are part of the schedule.
	Witness bool
	// MaxCut is the longest cut, isolation and kill (default 3s); the
	// shortest is 500ms. Make it longer than the lease time so that some
	// faults outlast the lease.
	MaxCut time.Duration
	// MaxFreeze is the longest freeze (default 10s; shortest 500ms).
	MaxFreeze time.Duration
}

// Schedule returns n faults drawn from seed. Faults come in rounds: each
// round is a shuffled list of every kind, so even a short run sees each
// kind once. Cut, isolation and kill durations are uniform in
// [500ms, MaxCut]; freezes are log-uniform in [500ms, MaxFreeze] (many
// short, some long); the target is the active node 70% of the time.
func Schedule(seed int64, n int, o ScheduleOptions) []Fault {
	if o.MaxCut <= 0 {
		o.MaxCut = 3 * time.Second
	}
	if o.MaxFreeze <= 0 {
		o.MaxFreeze = 10 * time.Second
	}
	const minDur = 500 * time.Millisecond
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	kinds := []Kind{CutNodes, Isolate, Freeze, Kill}
	if o.Witness {
		kinds = []Kind{CutNodes, CutWitness, Isolate, Freeze, Kill}
	}
	uniform := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	var out []Fault
	for len(out) < n {
		round := append([]Kind(nil), kinds...)
		rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		for _, k := range round {
			if len(out) == n {
				break
			}
			f := Fault{Kind: k, Target: TargetStandby, Settle: uniform(0, 500*time.Millisecond)}
			if rng.Float64() < 0.7 {
				f.Target = TargetActive
			}
			if k == Freeze {
				lo, hi := math.Log(float64(minDur)), math.Log(float64(max(o.MaxFreeze, minDur)))
				f.Dur = time.Duration(math.Exp(lo + rng.Float64()*(hi-lo))).Round(time.Millisecond)
			} else {
				f.Dur = uniform(minDur, o.MaxCut).Round(time.Millisecond)
			}
			out = append(out, f)
		}
	}
	return out
}
