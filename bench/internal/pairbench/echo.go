package pairbench

import "time"

// Answer is one echo reply the client received: when, and which appliance
// (0 = nva-a, 1 = nva-b) sent it.
type Answer struct {
	At   time.Time
	From int
}

// EncodeRequest and DecodeReply are the echo protocol: the client sends
// an 8-byte sequence number, the responder returns it followed by one
// byte, its appliance index.
func EncodeRequest(seq uint64) []byte {
	b := make([]byte, 8)
	for i := range 8 {
		b[i] = byte(seq >> (56 - 8*i))
	}
	return b
}

// DecodeReply parses a reply; ok is false for anything else.
func DecodeReply(b []byte) (seq uint64, from int, ok bool) {
	if len(b) != 9 || b[8] > 1 {
		return 0, 0, false
	}
	for i := range 8 {
		seq = seq<<8 | uint64(b[i])
	}
	return seq, int(b[8]), true
}

// MaxSilence is the longest time without an answer in the window [from,
// to]: between consecutive answers, from the last answer before from (or
// from itself when there is none) to the first inside, and from the last
// answer to to. as must be in arrival order.
func MaxSilence(as []Answer, from, to time.Time) time.Duration {
	prev := from
	var longest time.Duration
	for _, a := range as {
		if a.At.After(to) {
			break
		}
		if a.At.Before(from) {
			prev = a.At
			continue
		}
		longest = max(longest, a.At.Sub(prev))
		prev = a.At
	}
	return max(longest, to.Sub(prev))
}
