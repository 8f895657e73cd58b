package main

import (
	"testing"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
)

func TestInterruption(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	as := []pairbench.Answer{
		{At: at(-10), From: 0}, {At: at(-5), From: 0}, // before the failure, from the old node
		{At: at(3), From: 0}, {At: at(8), From: 0}, // the killed node still answers: not service
		{At: at(250), From: 1}, {At: at(255), From: 1},
	}
	gap, ok := interruption(as, t0, 1)
	if !ok || gap != 255*time.Millisecond {
		t.Fatalf("gap %v %v, want 255ms", gap, ok)
	}
	if _, ok := interruption(as[:4], t0, 1); ok {
		t.Error("no answer from the new node yet must not be ok")
	}
	if _, ok := interruption(as[4:], t0, 1); ok {
		t.Error("no answer before the failure must not be ok")
	}
}
