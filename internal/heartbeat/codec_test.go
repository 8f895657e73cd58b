package heartbeat

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/batonha/baton/internal/role"
)

var (
	testKey  = []byte("0123456789abcdef-test-key")
	otherKey = []byte("fedcba9876543210-other-key")
)

func sampleMessage() Message {
	return Message{
		Node: "fw-a", Path: "private", Epoch: 1_700_000_000_123_456_789, Seq: 42,
		Sent: 1_700_000_001_000_000_000, Echo: 1_700_000_000_900_000_000, EchoDelay: 1_500_000,
		State: role.Active, Term: 9, Priority: 150, Flags: FlagHealthy | FlagPreempt,
	}
}

func mustEncode(t testing.TB, m Message, key []byte) []byte {
	t.Helper()
	b, err := Encode(&m, key)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", m, err)
	}
	return b
}

func TestCodecRoundTrip(t *testing.T) {
	msgs := []Message{
		sampleMessage(),
		{Node: "b", Path: "p", Epoch: 1, Seq: 1},
		{Node: strings.Repeat("n", MaxNodeName), Path: strings.Repeat("p", MaxPathName), Epoch: math.MaxUint64,
			Seq: math.MaxUint64, Sent: math.MinInt64, Echo: -1, EchoDelay: math.MaxInt64, State: role.Maintenance,
			Term: math.MaxUint64, Priority: 255, Flags: knownFlags},
	}
	for _, m := range msgs {
		b := mustEncode(t, m, testKey)
		if want := fixedSize + len(m.Node) + len(m.Path); len(b) != want {
			t.Errorf("encoded %d bytes, want %d", len(b), want)
		}
		got, err := Decode(b, [][]byte{testKey})
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if got != m {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
		}
	}
}

func TestDecodeAcceptsAnyConfiguredKey(t *testing.T) {
	b := mustEncode(t, sampleMessage(), otherKey)
	if _, err := Decode(b, [][]byte{testKey, otherKey}); err != nil {
		t.Fatalf("Decode with the signing key second in the list: %v", err)
	}
	if _, err := Decode(b, [][]byte{testKey}); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("Decode without the signing key: err = %v, want ErrBadMAC", err)
	}
}

func TestMessageInfo(t *testing.T) {
	m := sampleMessage()
	m.Flags = FlagMaintenance | FlagHandover
	want := role.PeerInfo{Name: "fw-a", State: role.Active, Term: 9, Priority: 150, Maintenance: true, Handover: true}
	if got := m.Info(); got != want {
		t.Errorf("Info() = %+v, want %+v", got, want)
	}
}

// resign recomputes the MAC of b so that a structural change reaches the
// checks behind authentication.
func resign(b []byte, key []byte) []byte {
	if len(b) < macSize {
		return b
	}
	body := b[:len(b)-macSize]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return mac.Sum(append([]byte(nil), body...))
}

func TestDecodeRejects(t *testing.T) {
	good := mustEncode(t, sampleMessage(), testKey)
	n := len("fw-a")
	p := len("private")
	o := 8 + n + p // start of the fixed fields after the names
	mut := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	set := func(i int, v byte) []byte { return mut(func(b []byte) []byte { b[i] = v; return resign(b, testKey) }) }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short", good[:fixedSize], ErrMalformed},
		{"truncated by one", good[:len(good)-1], ErrMalformed},
		{"one extra byte", append(append([]byte(nil), good...), 0), ErrMalformed},
		{"oversize", append(append([]byte(nil), good...), make([]byte, MaxMessageSize)...), ErrMalformed},
		{"bad magic", set(0, 'X'), ErrMalformed},
		{"bad version", set(4, 2), ErrMalformed},
		{"header flags", set(5, 1), ErrMalformed},
		{"node length zero", set(6, 0), ErrMalformed},
		{"node length 64", set(6, 64), ErrMalformed},
		{"node length longer than message", set(6, 63), ErrMalformed},
		{"path length zero", set(7+n, 0), ErrMalformed},
		{"path length 33", set(7+n, 33), ErrMalformed},
		{"non-printable node", set(7, 0x01), ErrMalformed},
		{"space in path", set(8+n, ' '), ErrMalformed},
		{"echo delay negative", set(o+32, 0x80), ErrMalformed},
		{"unknown state", set(o+40, 5), ErrMalformed},
		{"unknown flag", set(o+50, 0x40), ErrMalformed},
		{"flipped seq bit", mut(func(b []byte) []byte { b[o+15] ^= 1; return b }), ErrBadMAC},
		{"flipped term bit", mut(func(b []byte) []byte { b[o+48] ^= 0x10; return b }), ErrBadMAC},
		{"flipped MAC bit", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrBadMAC},
		{"other key", mustEncode(t, sampleMessage(), otherKey), ErrBadMAC},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.in, [][]byte{testKey})
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode: err = %v, want %v", err, c.want)
			}
			wantReason := DropMalformed
			if c.want == ErrBadMAC {
				wantReason = DropBadMAC
			}
			if got := dropReason(err); got != wantReason {
				t.Errorf("dropReason = %q, want %q", got, wantReason)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := map[string]func(m *Message){
		"empty node":     func(m *Message) { m.Node = "" },
		"long node":      func(m *Message) { m.Node = strings.Repeat("x", MaxNodeName+1) },
		"long path":      func(m *Message) { m.Path = strings.Repeat("x", MaxPathName+1) },
		"space in node":  func(m *Message) { m.Node = "a b" },
		"negative delay": func(m *Message) { m.EchoDelay = -1 },
		"unknown state":  func(m *Message) { m.State = 9 },
		"unknown flag":   func(m *Message) { m.Flags = 0x80 },
	}
	for name, f := range cases {
		m := sampleMessage()
		f(&m)
		if _, err := Encode(&m, testKey); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
	}
	m := sampleMessage()
	if _, err := Encode(&m, nil); err == nil {
		t.Error("Encode with an empty key succeeded")
	}
}

func FuzzDecode(f *testing.F) {
	good := mustEncode(f, sampleMessage(), testKey)
	f.Add(good)
	f.Add(mustEncode(f, Message{Node: "b", Path: "channel", Epoch: 1, Seq: 2, Flags: FlagLeaving}, testKey))
	f.Add(good[:len(good)-1])
	f.Add([]byte("BTHB"))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 600))
	keys := [][]byte{testKey}
	f.Fuzz(func(t *testing.T, b []byte) {
		// As received, and re-signed so the structure behind the MAC is
		// explored too. Whatever is accepted must encode to the same bytes.
		for _, in := range [][]byte{b, resign(b, testKey)} {
			m, err := Decode(in, keys)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadMAC) {
					t.Fatalf("Decode error %v wraps neither ErrMalformed nor ErrBadMAC", err)
				}
				continue
			}
			out, err := Encode(&m, testKey)
			if err != nil {
				t.Fatalf("accepted message %+v does not encode: %v", m, err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("re-encoding differs:\n in %x\nout %x", in, out)
			}
		}
	})
}
