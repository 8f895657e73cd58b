package pairbench

import (
	"testing"
	"time"
)

func TestEchoProtocol(t *testing.T) {
	req := EncodeRequest(0x0102030405060708)
	seq, from, ok := DecodeReply(append(req, 1))
	if !ok || seq != 0x0102030405060708 || from != 1 {
		t.Fatalf("decoded %x %d %v", seq, from, ok)
	}
	for _, b := range [][]byte{nil, req, append(append([]byte{}, req...), 2), append(append([]byte{}, req...), 0, 0)} {
		if _, _, ok := DecodeReply(b); ok {
			t.Errorf("accepted %x", b)
		}
	}
}

func FuzzDecodeReply(f *testing.F) {
	f.Add(append(EncodeRequest(42), 0))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, from, ok := DecodeReply(b)
		if !ok {
			return
		}
		if from != 0 && from != 1 {
			t.Fatalf("from %d", from)
		}
		if got := append(EncodeRequest(seq), byte(from)); string(got) != string(b) {
			t.Fatalf("round trip %x != %x", got, b)
		}
	})
}

func TestMaxSilence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	as := []Answer{{at(-30), 1}, {at(-20), 1}, {at(10), 0}, {at(20), 0}, {at(270), 0}, {at(280), 1}, {at(900), 0}}
	for _, c := range []struct {
		from, to int
		want     time.Duration
	}{
		{0, 400, 250 * time.Millisecond},   // 20 -> 270
		{0, 15, 30 * time.Millisecond},     // -20 -> 10 spans the start
		{300, 700, 420 * time.Millisecond}, // nothing inside: 280 -> the end
		{-100, -25, 70 * time.Millisecond}, // the window starts before any answer
	} {
		if got := MaxSilence(as, at(c.from), at(c.to)); got != c.want {
			t.Errorf("MaxSilence(%d..%d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	if got := MaxSilence(nil, at(0), at(50)); got != 50*time.Millisecond {
		t.Errorf("no answers: %v", got)
	}
}
