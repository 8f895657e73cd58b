package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/lab"
)

// baton is pairbench's baton pair with the vip: section added, plus what
// the VIP benchmark reports of a takeover.
type baton struct {
	*pairbench.Baton
	marks [2]int64
}

func newBaton(e *env, bin string) (*baton, error) {
	base, err := pairbench.NewBaton(e.Env, bin)
	if err != nil {
		return nil, err
	}
	if err := base.AddVIP(); err != nil {
		return nil, err
	}
	return &baton{Baton: base}, nil
}

func (b *baton) status(i int) (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return api.NewClient(filepath.Join(b.Nodes[i].Dir, "baton.sock"), "").Status(ctx)
}

// Settled: both daemons answer, one is ACTIVE and the other STANDBY, and
// each sees every path to its peer up (so the peer channel is connected).
func (b *baton) Settled() (int, bool, string) {
	var st [2]api.Status
	for i := range 2 {
		if !b.Nodes[i].Running() {
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

func (b *baton) Mark(i int) { b.marks[i] = fileSize(b.Nodes[i].LogPath) }

// Detail reports when the node logged becoming ACTIVE and adding the VIP.
func (b *baton) Detail(i int, t0 time.Time) string {
	var active, added time.Time
	for _, line := range sinceMark(b.Nodes[i].LogPath, b.marks[i]) {
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
