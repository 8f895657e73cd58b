package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"

	"github.com/batonha/baton/internal/role"
)

// Wire constants; see the package documentation for the layout.
const (
	Version        = 1
	MaxMessageSize = 512
	MaxNodeName    = 63
	MaxPathName    = 32
	// ChannelPath is the path name of messages on the TCP peer channel.
	ChannelPath = "channel"

	magic      = "BTHB"
	macSize    = sha256.Size
	fixedSize  = 4 + 1 + 1 + 1 + 1 + 5*8 + 1 + 8 + 1 + 1 + macSize // 91
	maxPayload = uint8(role.Maintenance)
)

// Drop reasons, the keys of Status.Drops.
const (
	DropMalformed     = "malformed"
	DropBadMAC        = "bad_mac"
	DropReplay        = "replay"
	DropUnknownSender = "unknown_sender"
	DropUnknownPath   = "unknown_path"
	DropStaleEpoch    = "stale_epoch"
	DropDeadEpoch     = "dead_epoch"
	// DropUnechoed: a message of a peer run not yet proven live.
	DropUnechoed = "unechoed"
	// DropChannelFull counts peer channel connections closed because
	// maxInbound were open: an unauthenticated one evicted, or the new one.
	DropChannelFull = "channel_full"
)

// Errors returned by Decode; test with errors.Is.
var (
	ErrMalformed = errors.New("malformed heartbeat")
	ErrBadMAC    = errors.New("heartbeat authentication failed")
)

// Flags are the boolean fields of a message payload.
type Flags uint8

// Payload flags.
const (
	FlagHealthy Flags = 1 << iota
	FlagMaintenance
	FlagHandover
	FlagPreempt
	FlagLeaving
	FlagYielding // stepped down for a switchover; hands the role to the peer

	knownFlags = FlagHealthy | FlagMaintenance | FlagHandover | FlagPreempt | FlagLeaving | FlagYielding
)

// Message is one heartbeat.
type Message struct {
	Node      string // sender
	Path      string
	Epoch     uint64
	Seq       uint64
	Sent      int64 // unix nanoseconds on the sender's clock
	Echo      int64 // last Sent received from the receiver on this path, 0 if none
	EchoDelay int64 // nanoseconds between receiving Echo and sending this, >= 0
	State     role.State
	Term      uint64
	Priority  uint8
	Flags     Flags
}

// Info is the peer state the message advertises.
func (m *Message) Info() role.PeerInfo {
	return role.PeerInfo{
		Name:        m.Node,
		State:       m.State,
		Term:        m.Term,
		Priority:    int(m.Priority),
		Healthy:     m.Flags&FlagHealthy != 0,
		Maintenance: m.Flags&FlagMaintenance != 0,
		Handover:    m.Flags&FlagHandover != 0,
		Preempt:     m.Flags&FlagPreempt != 0,
		Yielding:    m.Flags&FlagYielding != 0,
	}
}

// validName reports whether s is a node or path name the wire accepts.
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Encode returns m signed with key.
func Encode(m *Message, key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, errors.New("encoding heartbeat: empty key")
	}
	return appendEncoded(make([]byte, 0, fixedSize+len(m.Node)+len(m.Path)), m, hmac.New(sha256.New, key))
}

// appendEncoded appends m, signed with mac (an HMAC-SHA256 keyed with the
// signing key, reset here; nil for no key), to b. It allocates nothing
// when b has room.
func appendEncoded(b []byte, m *Message, mac hash.Hash) ([]byte, error) {
	switch {
	case !validName(m.Node, MaxNodeName):
		return nil, fmt.Errorf("encoding heartbeat: node name %q is not 1..%d printable characters", m.Node, MaxNodeName)
	case !validName(m.Path, MaxPathName):
		return nil, fmt.Errorf("encoding heartbeat: path name %q is not 1..%d printable characters", m.Path, MaxPathName)
	case m.EchoDelay < 0:
		return nil, fmt.Errorf("encoding heartbeat: negative echo delay %d", m.EchoDelay)
	case uint8(m.State) > maxPayload:
		return nil, fmt.Errorf("encoding heartbeat: unknown state %d", m.State)
	case m.Flags&^knownFlags != 0:
		return nil, fmt.Errorf("encoding heartbeat: unknown flags %#x", uint8(m.Flags))
	case mac == nil:
		return nil, errors.New("encoding heartbeat: empty key")
	}
	start := len(b)
	b = append(b, magic...)
	b = append(b, Version, 0)
	b = append(b, byte(len(m.Node)))
	b = append(b, m.Node...)
	b = append(b, byte(len(m.Path)))
	b = append(b, m.Path...)
	b = binary.BigEndian.AppendUint64(b, m.Epoch)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Sent))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Echo))
	b = binary.BigEndian.AppendUint64(b, uint64(m.EchoDelay))
	b = append(b, byte(m.State))
	b = binary.BigEndian.AppendUint64(b, m.Term)
	b = append(b, m.Priority, byte(m.Flags))
	mac.Reset()
	mac.Write(b[start:])
	return mac.Sum(b), nil
}

// macs holds one keyed HMAC-SHA256 per key, reused from message to
// message (keying costs more than the message), and room for a sum. Not
// safe for concurrent use.
type macs struct {
	h   []hash.Hash
	sum []byte
}

func newMACs(keys [][]byte) *macs {
	ms := &macs{sum: make([]byte, 0, macSize)}
	for _, k := range keys {
		if len(k) > 0 {
			ms.h = append(ms.h, hmac.New(sha256.New, k))
		}
	}
	return ms
}

// signer is the HMAC of the signing key (the first), nil without keys.
func (ms *macs) signer() hash.Hash {
	if len(ms.h) == 0 {
		return nil
	}
	return ms.h[0]
}

// Decode parses and authenticates b, accepting a MAC under any of keys.
// It never panics; its errors wrap ErrMalformed or ErrBadMAC.
func Decode(b []byte, keys [][]byte) (Message, error) {
	return decode(b, newMACs(keys), nil)
}

// decode is Decode with reusable MACs. intern, when set, returns the
// string for a node or path name (a known name without allocating); nil
// copies the bytes.
func decode(b []byte, ms *macs, intern func([]byte) string) (Message, error) {
	var m Message
	malformed := func(format string, a ...any) (Message, error) {
		return Message{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
	}
	if len(b) < fixedSize+2 {
		return malformed("%d bytes, shorter than the minimum %d", len(b), fixedSize+2)
	}
	if len(b) > MaxMessageSize {
		return malformed("%d bytes, longer than the maximum %d", len(b), MaxMessageSize)
	}
	if string(b[:4]) != magic {
		return malformed("bad magic %x", b[:4])
	}
	if b[4] != Version {
		return malformed("unsupported version %d", b[4])
	}
	if b[5] != 0 {
		return malformed("reserved header flags %#x set", b[5])
	}
	n := int(b[6])
	if n == 0 || n > MaxNodeName {
		return malformed("node name length %d out of 1..%d", n, MaxNodeName)
	}
	off := 7 + n
	// The length check above guarantees off < len(b) here: 7+63 < 93.
	p := int(b[off])
	if p == 0 || p > MaxPathName {
		return malformed("path name length %d out of 1..%d", p, MaxPathName)
	}
	if want := fixedSize + n + p; len(b) != want {
		return malformed("%d bytes, want %d for name lengths %d and %d", len(b), want, n, p)
	}
	if intern == nil {
		intern = func(b []byte) string { return string(b) }
	}
	m.Node = intern(b[7:off])
	m.Path = intern(b[off+1 : off+1+p])
	if !validName(m.Node, MaxNodeName) || !validName(m.Path, MaxPathName) {
		return malformed("names contain non-printable characters")
	}
	o := off + 1 + p
	be := binary.BigEndian
	m.Epoch = be.Uint64(b[o:])
	m.Seq = be.Uint64(b[o+8:])
	m.Sent = int64(be.Uint64(b[o+16:]))
	m.Echo = int64(be.Uint64(b[o+24:]))
	delay := be.Uint64(b[o+32:])
	if delay > math.MaxInt64 {
		return malformed("echo delay %d out of range", delay)
	}
	m.EchoDelay = int64(delay)
	if b[o+40] > maxPayload {
		return malformed("unknown state %d", b[o+40])
	}
	m.State = role.State(b[o+40])
	m.Term = be.Uint64(b[o+41:])
	m.Priority = b[o+49]
	m.Flags = Flags(b[o+50])
	if m.Flags&^knownFlags != 0 {
		return malformed("unknown flags %#x", uint8(m.Flags))
	}
	body, sum := b[:o+51], b[o+51:]
	for _, mac := range ms.h {
		mac.Reset()
		mac.Write(body)
		ms.sum = mac.Sum(ms.sum[:0])
		if hmac.Equal(ms.sum, sum) {
			return m, nil
		}
	}
	return Message{}, fmt.Errorf("%w: no configured key matches the MAC from %q", ErrBadMAC, m.Node)
}

// dropReason maps a Decode error to its drop reason.
func dropReason(err error) string {
	if errors.Is(err, ErrBadMAC) {
		return DropBadMAC
	}
	return DropMalformed
}
