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
	// WitnessDown makes the witness unreachable from both nodes, which
	// still hear each other: the active must stay active.
	WitnessDown Kind = "witness_down"
	// WitnessKill SIGKILLs the witness server and restarts it (etcd; a
	// witness that keeps its state in memory gets WitnessDown instead).
	WitnessKill Kind = "witness_kill"
	// WitnessThenCut makes the witness unreachable from both nodes and,
	// a third of the way in, cuts the nodes apart too; all heal together.
	WitnessThenCut Kind = "witness_then_cut"
	// WitnessThenKill makes the witness unreachable from both nodes and,
	// a third of the way in, kills the active node; the witness comes back
	// and the node is restarted together.
	WitnessThenKill Kind = "witness_then_kill"
)

// WitnessOnly reports whether k is an outage of the witness alone: the
// pair must keep its active throughout.
func (k Kind) WitnessOnly() bool { return k == WitnessDown || k == WitnessKill }

// Compound reports whether k is a witness outage with a second fault
// during it: nobody can take over until the witness is back, so only the
// no-active time after the heal counts.
func (k Kind) Compound() bool { return k == WitnessThenCut || k == WitnessThenKill }

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
	// MaxWitnessOutage is the longest outage of the witness alone
	// (default 20s; shortest 500ms).
	MaxWitnessOutage time.Duration
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
	if o.MaxWitnessOutage <= 0 {
		o.MaxWitnessOutage = 20 * time.Second
	}
	const minDur = 500 * time.Millisecond
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	kinds := []Kind{CutNodes, Isolate, Freeze, Kill}
	if o.Witness {
		kinds = []Kind{CutNodes, CutWitness, Isolate, Freeze, Kill, WitnessDown, WitnessKill, WitnessThenCut, WitnessThenKill}
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
			switch {
			case k == Freeze:
				lo, hi := math.Log(float64(minDur)), math.Log(float64(max(o.MaxFreeze, minDur)))
				f.Dur = time.Duration(math.Exp(lo + rng.Float64()*(hi-lo))).Round(time.Millisecond)
			case k.WitnessOnly():
				f.Dur = uniform(minDur, o.MaxWitnessOutage).Round(time.Millisecond)
			case k.Compound():
				f.Target = TargetActive
				f.Dur = uniform(3*minDur, max(o.MaxCut, 3*minDur)).Round(time.Millisecond)
			default:
				f.Dur = uniform(minDur, o.MaxCut).Round(time.Millisecond)
			}
			out = append(out, f)
		}
	}
	return out
}
