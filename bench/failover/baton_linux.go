package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/lab"
)

// baton runs the baton daemon on both appliances with the lab's pair
// configuration (paths front + hb, channel on hb, HTTP probe).
type baton struct {
	e      *env
	bin    string
	nodes  [2]*lab.BatonNode
	follow [2]*lab.LogFollower
	last   [2]string // last role each node logged
	http   *http.Client
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
	b := &baton{e: e, bin: bin, nodes: nodes}
	for i := range 2 {
		b.follow[i] = lab.NewLogFollower(nodes[i].LogPath)
	}
	b.http = &http.Client{
		Transport: &http.Transport{DialContext: e.pair.Client.DialContext, DisableKeepAlives: true},
		Timeout:   500 * time.Millisecond,
	}
	return b, nil
}

func (b *baton) name() string { return "baton" }

func (b *baton) stableFor() time.Duration { return time.Duration(b.e.misses+2) * b.e.interval }

func (b *baton) start(i int) error {
	b.last[i] = ""
	return b.nodes[i].Start(b.bin)
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

func (b *baton) settled() (int, bool, string) {
	for i := range 2 {
		if !b.nodes[i].Running() {
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

func (b *baton) arm(standby int, stop <-chan struct{}) (*watch, error) {
	ready, res := probeUntil200(b.e.pair.Client.NsHandle(), lab.FrontAddr(standby), lab.ProbePort, 5*time.Millisecond, stop)
	if err := <-ready; err != nil {
		return nil, err
	}
	f := lab.NewLogFollower(b.nodes[standby].LogPath)
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

func (b *baton) fail(i int, v variant) error {
	switch v {
	case variantKill:
		return b.nodes[i].Proc.Signal(syscall.SIGKILL)
	case variantLinkDown:
		return b.e.setLinks(i, false)
	}
	return fmt.Errorf("unknown variant %q", v)
}

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

func (b *baton) pids(i int) ([]int, error) {
	if !b.nodes[i].Running() {
		return nil, fmt.Errorf("baton on %s not running", lab.ApplianceName(i))
	}
	return []int{b.nodes[i].Proc.PID}, nil
}

func (b *baton) logTail(i int) string { return tail(b.nodes[i].LogPath, 12) }
