package main

import (
	"testing"
	"time"
)

func TestInterruption(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	as := []answer{
		{at(-10), 0}, {at(-5), 0}, // before the failure, from the old node
		{at(3), 0}, {at(8), 0}, // the killed node still answers: not service
		{at(250), 1}, {at(255), 1},
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

func TestEchoProtocol(t *testing.T) {
	req := encodeRequest(0x0102030405060708)
	seq, from, ok := decodeReply(append(req, 1))
	if !ok || seq != 0x0102030405060708 || from != 1 {
		t.Fatalf("decoded %x %d %v", seq, from, ok)
	}
	for _, b := range [][]byte{nil, req, append(append([]byte{}, req...), 2), append(append([]byte{}, req...), 0, 0)} {
		if _, _, ok := decodeReply(b); ok {
			t.Errorf("accepted %x", b)
		}
	}
}

func FuzzDecodeReply(f *testing.F) {
	f.Add(append(encodeRequest(42), 0))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, from, ok := decodeReply(b)
		if !ok {
			return
		}
		if from != 0 && from != 1 {
			t.Fatalf("from %d", from)
		}
		if got := append(encodeRequest(seq), byte(from)); string(got) != string(b) {
			t.Fatalf("round trip %x != %x", got, b)
		}
	})
}
