package main

import (
	"fmt"
	"net"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
)

// keepalived is pairbench's keepalived pair plus the takeover watch.
type keepalived struct {
	*pairbench.Keepalived
}

func newKeepalived(e *pairbench.Env, bin string) (*keepalived, error) {
	k, err := pairbench.NewKeepalived(e, bin)
	if err != nil {
		return nil, err
	}
	return &keepalived{k}, nil
}

// Arm watches the standby for the VIP appearing (serving) and for its
// notify script recording MASTER (role change).
func (k *keepalived) Arm(standby int, stop <-chan struct{}) (*watch, error) {
	h := k.Env.Pair.Appliances()[standby]
	ready, res := pairbench.WatchAddr(h.NsHandle(), net.ParseIP(pairbench.VIPAddr), stop)
	if err := <-ready; err != nil {
		return nil, err
	}
	if has, err := h.HasAddr(pairbench.VIPAddr); err != nil || has {
		return nil, fmt.Errorf("arming the VIP watch on %s: VIP present=%t, %v", h.Name(), has, err)
	}
	_, before := k.LastEvent(standby)
	return &watch{
		serving: res,
		role: func() (time.Time, bool, error) {
			st, at := k.LastEvent(standby)
			if st == "MASTER" && at.After(before) {
				return at, true, nil
			}
			return time.Time{}, false, nil
		},
	}, nil
}
