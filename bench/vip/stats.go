package main

import "time"

// answer is one echo reply the client received: when, and which appliance
// (0 = nva-a, 1 = nva-b) sent it.
type answer struct {
	at   time.Time
	from int
}

// interruption is the client's outage around a failure at t0 with newNode
// taking over: from the last answer received before t0 to the first answer
// from newNode after t0. Answers the failed node still sends after t0 (a
// SIGKILLed daemon leaves its VIP behind, and the client reaches it until
// an announcement moves it) do not end the outage. ok is false while no
// answer from newNode has arrived after t0, or when none arrived before.
func interruption(as []answer, t0 time.Time, newNode int) (gap time.Duration, ok bool) {
	var last, first time.Time
	for _, a := range as {
		if a.at.Before(t0) {
			if a.at.After(last) {
				last = a.at
			}
			continue
		}
		if a.from == newNode && (first.IsZero() || a.at.Before(first)) {
			first = a.at
		}
	}
	if last.IsZero() || first.IsZero() {
		return 0, false
	}
	return first.Sub(last), true
}

// encodeRequest and decodeReply are the echo protocol: the client sends an
// 8-byte sequence number, the responder returns it followed by one byte,
// its appliance index.
func encodeRequest(seq uint64) []byte {
	b := make([]byte, 8)
	for i := range 8 {
		b[i] = byte(seq >> (56 - 8*i))
	}
	return b
}

// decodeReply parses a reply; ok is false for anything else.
func decodeReply(b []byte) (seq uint64, from int, ok bool) {
	if len(b) != 9 || b[8] > 1 {
		return 0, 0, false
	}
	for i := range 8 {
		seq = seq<<8 | uint64(b[i])
	}
	return seq, int(b[8]), true
}
