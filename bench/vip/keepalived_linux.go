package main

import (
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
)

// keepalived is pairbench's keepalived pair plus what the VIP benchmark
// reports of a takeover: when the notify script recorded MASTER.
type keepalived struct {
	*pairbench.Keepalived
	marks [2]int64
}

func newKeepalived(e *env, bin string) (*keepalived, error) {
	k, err := pairbench.NewKeepalived(e.Env, bin)
	if err != nil {
		return nil, err
	}
	return &keepalived{Keepalived: k}, nil
}

func (k *keepalived) Mark(i int) { k.marks[i] = fileSize(k.EventsPath(i)) }

// Detail reports when the node's notify_master script ran.
func (k *keepalived) Detail(i int, t0 time.Time) string {
	var master time.Time
	for _, line := range sinceMark(k.EventsPath(i), k.marks[i]) {
		if st, at, err := pairbench.ParseNotify(line); err == nil && st == "MASTER" {
			master = at
			break
		}
	}
	return "notify MASTER " + rel(master, t0)
}
