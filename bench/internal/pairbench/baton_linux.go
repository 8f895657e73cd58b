package pairbench

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/lab"
)

// Baton runs `baton run` on both appliances of an Env with the lab's pair
// configuration (three heartbeat paths: front, back and hb; the peer
// channel on hb), nva-a preferred, preempting when e.Preempt.
type Baton struct {
	Env   *Env
	Nodes [2]*lab.BatonNode
	bin   string
	// Profile makes each daemon write a CPU profile of its run to
	// ProfilePath, complete once Stop has ended it.
	Profile bool
}

// NewBaton writes both nodes' key and configuration under e.Dir; bin is
// the baton binary.
func NewBaton(e *Env, bin string) (*Baton, error) {
	var opts [2]lab.NodeOptions
	for i := range opts {
		opts[i] = lab.NodeOptions{Priority: priority(i), Preempt: e.Preempt, Interval: e.Interval, Misses: e.Misses, BackPath: true}
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
func (b *Baton) Start(i int) error {
	var args []string
	if b.Profile {
		args = []string{"--cpuprofile", b.ProfilePath(i)}
	}
	return b.Nodes[i].Start(b.bin, args...)
}

// ProfilePath is where node i's daemon writes its CPU profile.
func (b *Baton) ProfilePath(i int) string { return filepath.Join(b.Nodes[i].Dir, "cpu.pprof") }

// Stop ends node i's daemon with SIGTERM (it stops cleanly, finishing its
// profile) and waits up to 10s for it to exit.
func (b *Baton) Stop(i int) error {
	p := b.Nodes[i].Proc
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.Done():
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("baton on %s did not stop within 10s of SIGTERM", lab.ApplianceName(i))
	}
}

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

// batonVIP is the vip: section AddVIP gives both nodes: the VIP on the
// bridged front interface, five announcement rounds (keepalived sends five
// gratuitous ARPs on becoming master), no conflict probe (keepalived has
// none either).
const batonVIP = `vip:
  addresses:
    - address: ` + VIPCIDR + `
      interface: eth0
  garp_count: 5
  garp_interval: 200ms
`

// AddVIP adds the vip action holding VIPCIDR to both nodes'
// configurations, before they start.
func (b *Baton) AddVIP() error {
	for _, n := range b.Nodes {
		f, err := os.OpenFile(n.Config, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("adding the vip section to %s: %w", n.Config, err)
		}
		_, err = f.WriteString(batonVIP)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("adding the vip section to %s: %w", n.Config, err)
		}
	}
	return nil
}
