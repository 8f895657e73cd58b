package pairbench

import (
	"syscall"
	"time"

	"github.com/batonha/baton/internal/lab"
)

// Baton runs `baton run` on both appliances of an Env with the lab's pair
// configuration (paths front + hb, the peer channel on hb), nva-a
// preferred.
type Baton struct {
	Env   *Env
	Nodes [2]*lab.BatonNode
	bin   string
}

// NewBaton writes both nodes' key and configuration under e.Dir; bin is
// the baton binary.
func NewBaton(e *Env, bin string) (*Baton, error) {
	var opts [2]lab.NodeOptions
	for i := range opts {
		opts[i] = lab.NodeOptions{Priority: priority(i), Interval: e.Interval, Misses: e.Misses}
	}
	nodes, err := lab.SetupBatonNodes(e.Pair, e.Dir, opts)
	if err != nil {
		return nil, err
	}
	return &Baton{Env: e, Nodes: nodes, bin: bin}, nil
}

// Name is the daemon's name in reports.
func (b *Baton) Name() string { return "baton" }

// StableFor is how long the pair must stay settled before a failure:
// detection time plus two intervals.
func (b *Baton) StableFor() time.Duration { return time.Duration(b.Env.Misses+2) * b.Env.Interval }

// Start runs the daemon on node i.
func (b *Baton) Start(i int) error { return b.Nodes[i].Start(b.bin) }

// Fail fails node i by v; Kill SIGKILLs its daemon.
func (b *Baton) Fail(i int, v Variant) error {
	return b.Env.Fail(i, v, func() error { return b.Nodes[i].Proc.Signal(syscall.SIGKILL) })
}

// Restore restarts a killed daemon (which removes the VIP its crash left
// behind by itself) or sets the links up again.
func (b *Baton) Restore(i int, v Variant) error {
	return b.Env.Restore(i, v, "baton", b.Nodes[i].Proc, func() error { return b.Start(i) })
}

// LogTail returns the end of node i's log for error reports.
func (b *Baton) LogTail(i int) string { return Tail(b.Nodes[i].LogPath, 12) }
