package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/batonha/baton/internal/lab"
)

// baton runs the baton daemon on both appliances with the lab's pair
// configuration (paths front + hb, channel on hb, HTTP probe) and follows
// the roles each node logs.
type baton struct {
	*pairbench.Baton
	follow [2]*lab.LogFollower
	last   [2]string // last role each node logged
	http   *http.Client
}

func newBaton(e *pairbench.Env, bin string) (*baton, error) {
	base, err := pairbench.NewBaton(e, bin)
	if err != nil {
		return nil, err
	}
	b := &baton{Baton: base}
	for i := range 2 {
		b.follow[i] = lab.NewLogFollower(base.Nodes[i].LogPath)
	}
	b.http = &http.Client{
		Transport: &http.Transport{DialContext: e.Pair.Client.DialContext, DisableKeepAlives: true},
		Timeout:   500 * time.Millisecond,
	}
	return b, nil
}

// Start forgets the role node i last logged and starts it.
func (b *baton) Start(i int) error {
	b.last[i] = ""
	return b.Baton.Start(i)
}

// Restore is pairbench's, restarting through b.Start.
func (b *baton) Restore(i int, v pairbench.Variant) error {
	return b.Env.Restore(i, v, b.Name(), b.Nodes[i].Proc, func() error { return b.Start(i) })
}

// probe returns the HTTP status of node i's probe, 0 when unreachable.
func (b *baton) probe(i int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/", lab.FrontAddr(i), lab.ProbePort), nil)
	if err != nil {
		return 0
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (b *baton) Settled() (int, bool, string) {
	for i := range 2 {
		if !b.Nodes[i].Running() {
			return -1, false, lab.ApplianceName(i) + ": baton not running"
		}
		rcs, err := b.follow[i].Next()
		if err != nil {
			return -1, false, err.Error()
		}
		for _, rc := range rcs {
			b.last[i] = rc.To
		}
	}
	var st [2]int
	active := -1
	for i := range 2 {
		st[i] = b.probe(i)
		if st[i] == http.StatusOK {
			if active >= 0 {
				return -1, false, "both probes answer 200"
			}
			active = i
		}
	}
	if active < 0 {
		return -1, false, fmt.Sprintf("no probe answers 200 (nva-a %d, nva-b %d)", st[0], st[1])
	}
	other := 1 - active
	if st[other] == 0 {
		return -1, false, lab.ApplianceName(other) + "'s probe does not answer"
	}
	if b.last[active] != "ACTIVE" || b.last[other] != "STANDBY" {
		return -1, false, fmt.Sprintf("logged roles: %s %q, %s %q", lab.ApplianceName(active), b.last[active], lab.ApplianceName(other), b.last[other])
	}
	return active, true, ""
}

// Arm polls the standby's probe for 200 (serving) and follows its log for
// the change to ACTIVE (role change).
func (b *baton) Arm(standby int, stop <-chan struct{}) (*watch, error) {
	ready, res := probeUntil200(b.Env.Pair.Client.NsHandle(), lab.FrontAddr(standby), lab.ProbePort, 5*time.Millisecond, stop)
	if err := <-ready; err != nil {
		return nil, err
	}
	f := lab.NewLogFollower(b.Nodes[standby].LogPath)
	if err := f.SkipToEnd(); err != nil {
		return nil, err
	}
	return &watch{
		serving: res,
		role: func() (time.Time, bool, error) {
			rcs, err := f.Next()
			if err != nil {
				return time.Time{}, false, err
			}
			for _, rc := range rcs {
				if rc.To == "ACTIVE" {
					return rc.Time, true, nil
				}
			}
			return time.Time{}, false, nil
		},
	}, nil
}

func (b *baton) PIDs(i int) ([]int, error) {
	if !b.Nodes[i].Running() {
		return nil, fmt.Errorf("baton on %s not running", lab.ApplianceName(i))
	}
	return []int{b.Nodes[i].Proc.PID}, nil
}
