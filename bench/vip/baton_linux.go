package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/lab"
)

// batonVIP is the vip: section both nodes get: the VIP on the bridged
// front interface, five announcement rounds (keepalived sends five
// gratuitous ARPs on becoming master), no conflict probe (keepalived has
// none either).
const batonVIP = `vip:
  addresses:
    - address: ` + vipCIDR + `
      interface: eth0
  garp_count: 5
  garp_interval: 200ms
`

// baton runs `baton run` on both appliances with the lab's pair
// configuration (paths front + hb, the peer channel on hb) plus the VIP.
type baton struct {
	e     *env
	bin   string
	nodes [2]*lab.BatonNode
	marks [2]int64
}

func newBaton(e *env, bin string) (*baton, error) {
	opts := [2]lab.NodeOptions{
		{Priority: 150, Interval: e.interval, Misses: e.misses},
		{Priority: 100, Interval: e.interval, Misses: e.misses},
	}
	nodes, err := lab.SetupBatonNodes(e.pair, e.dir, opts)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		f, err := os.OpenFile(n.Config, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("adding the vip section to %s: %w", n.Config, err)
		}
		_, err = f.WriteString(batonVIP)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("adding the vip section to %s: %w", n.Config, err)
		}
	}
	return &baton{e: e, bin: bin, nodes: nodes}, nil
}

func (b *baton) name() string { return "baton" }

func (b *baton) stableFor() time.Duration { return time.Duration(b.e.misses+2) * b.e.interval }

func (b *baton) start(i int) error { return b.nodes[i].Start(b.bin) }

func (b *baton) status(i int) (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return api.NewClient(filepath.Join(b.nodes[i].Dir, "baton.sock"), "").Status(ctx)
}

// settled: both daemons answer, one is ACTIVE and the other STANDBY, and
// each sees every path to its peer up (so the peer channel is connected).
func (b *baton) settled() (int, bool, string) {
	var st [2]api.Status
	for i := range 2 {
		if !b.nodes[i].Running() {
			return -1, false, lab.ApplianceName(i) + ": baton not running"
		}
		var err error
		if st[i], err = b.status(i); err != nil {
			return -1, false, fmt.Sprintf("%s: %v", lab.ApplianceName(i), err)
		}
		if len(st[i].Peer.Paths) == 0 {
			return -1, false, lab.ApplianceName(i) + ": no paths"
		}
		for _, p := range st[i].Peer.Paths {
			if !p.Up {
				return -1, false, fmt.Sprintf("%s: path %s down", lab.ApplianceName(i), p.Name)
			}
		}
	}
	for a := range 2 {
		if st[a].Role == "ACTIVE" && st[1-a].Role == "STANDBY" {
			return a, true, ""
		}
	}
	return -1, false, fmt.Sprintf("roles %s/%s", st[0].Role, st[1].Role)
}

func (b *baton) fail(i int, v variant) error {
	switch v {
	case variantKill:
		return b.nodes[i].Proc.Signal(syscall.SIGKILL)
	case variantLinkDown:
		return b.e.setLinks(i, false)
	}
	return fmt.Errorf("unknown variant %q", v)
}

// restore restarts a killed daemon (which removes the VIP its crash left
// behind by itself) or sets the links up again.
func (b *baton) restore(i int, v variant) error {
	switch v {
	case variantKill:
		select {
		case <-b.nodes[i].Proc.Done():
		case <-time.After(5 * time.Second):
			return fmt.Errorf("baton on %s did not die", lab.ApplianceName(i))
		}
		return b.start(i)
	case variantLinkDown:
		return b.e.setLinks(i, true)
	}
	return fmt.Errorf("unknown variant %q", v)
}

func (b *baton) logTail(i int) string { return tail(b.nodes[i].LogPath, 12) }

func (b *baton) mark(i int) { b.marks[i] = fileSize(b.nodes[i].LogPath) }

// detail reports when the node logged becoming ACTIVE and adding the VIP.
func (b *baton) detail(i int, t0 time.Time) string {
	var active, added time.Time
	for _, line := range sinceMark(b.nodes[i].LogPath, b.marks[i]) {
		var rec struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			To   string    `json:"to"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		switch {
		case rec.Msg == "role changed" && rec.To == "ACTIVE" && active.IsZero():
			active = rec.Time
		case rec.Msg == "vip added" && added.IsZero():
			added = rec.Time
		}
	}
	return "active " + rel(active, t0) + ", vip added " + rel(added, t0)
}
