package main

import (
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
)

// interruption is the client's outage around a failure at t0 with newNode
// taking over: from the last answer received before t0 to the first answer
// from newNode after t0. Answers the failed node still sends after t0 (a
// SIGKILLed daemon leaves its VIP behind, and the client reaches it until
// an announcement moves it) do not end the outage. ok is false while no
// answer from newNode has arrived after t0, or when none arrived before.
func interruption(as []pairbench.Answer, t0 time.Time, newNode int) (gap time.Duration, ok bool) {
	var last, first time.Time
	for _, a := range as {
		if a.At.Before(t0) {
			if a.At.After(last) {
				last = a.At
			}
			continue
		}
		if a.From == newNode && (first.IsZero() || a.At.Before(first)) {
			first = a.At
		}
	}
	if last.IsZero() || first.IsZero() {
		return 0, false
	}
	return first.Sub(last), true
}
