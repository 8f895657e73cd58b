package configsync

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Wire protocol, over a peer-link stream of service "configsync". Each
// frame's payload is a 4-byte big-endian header length, a JSON header and
// the raw file content (msgFile only). The dialling node sends hello,
// then index and file frames; the accepting node answers hello, want and
// ack frames. indexReq and get serve `baton sync diff` on a stream of
// their own.
const (
	msgHello    uint8 = 1 // hello
	msgIndex    uint8 = 2 // index: every entry of the sender
	msgFile     uint8 = 3 // fileHeader + content
	msgWant     uint8 = 4 // want: keys the receiver needs
	msgAck      uint8 = 5 // ack: outcome of a file
	msgIndexReq uint8 = 6 // (empty) asks for an index, answered with msgIndex
	msgGet      uint8 = 7 // want: asks for files without applying them, answered with msgFile
)

// Service is the peer-link service name.
const Service = "configsync"

// Key names a synced file: its set and its slash-separated path relative
// to the set's dir.
type Key struct {
	Set  string `json:"set"`
	Path string `json:"path"`
}

func (k Key) String() string { return k.Set + ":" + k.Path }

// Conflict records a resolved conflict on the version that won it.
type Conflict struct {
	Loser     string `json:"loser"`      // node whose edit lost
	LoserHash string `json:"loser_hash"` // canonical hash of the losing content
	At        int64  `json:"at"`         // when it was resolved (unix ns)
}

// Meta is one version of a file, as both nodes know it.
type Meta struct {
	VV      VV        `json:"vv"`
	Hash    string    `json:"hash,omitempty"` // sha256 of the canonical content
	At      int64     `json:"at"`             // when the edit was written (unix ns), see version.go
	Node    string    `json:"node"`           // node that made the edit
	Deleted bool      `json:"deleted,omitempty"`
	Size    int64     `json:"size"`
	Mode    uint32    `json:"mode"` // permission bits
	UID     int       `json:"uid"`
	GID     int       `json:"gid"`
	Conf    *Conflict `json:"conflict,omitempty"`
}

type hello struct {
	Node        string `json:"node"`
	Fingerprint string `json:"fingerprint"`
	Error       string `json:"error,omitempty"`
}

type indexEntry struct {
	Key
	Meta
}

type index struct {
	Entries []indexEntry `json:"entries"`
}

type fileHeader struct {
	Key
	Meta
	Sent int64 `json:"sent"` // sender's clock when sent (unix ns)
}

type want struct {
	Keys  []Key `json:"keys"`
	Index bool  `json:"index,omitempty"` // the answer to an index
}

type ack struct {
	Key
	Local   Meta   `json:"local"`   // the receiver's version after handling
	OK      bool   `json:"ok"`      // the receiver holds the sent content (or newer)
	Applied bool   `json:"applied"` // the file was written
	Error   string `json:"error,omitempty"`
	Sent    int64  `json:"sent"` // echoed from the file header
}

// maxHeader bounds a frame's JSON header.
const maxHeader = 8 << 20

// encodeFrame builds a frame payload.
func encodeFrame(hdr any, body []byte) ([]byte, error) {
	h, err := json.Marshal(hdr)
	if err != nil {
		return nil, fmt.Errorf("encoding message header: %w", err)
	}
	out := make([]byte, 4, 4+len(h)+len(body))
	binary.BigEndian.PutUint32(out, uint32(len(h)))
	out = append(out, h...)
	return append(out, body...), nil
}

// decodeFrame splits a frame payload and decodes its header into hdr; it
// returns the content that follows.
func decodeFrame(p []byte, hdr any) ([]byte, error) {
	if len(p) < 4 {
		return nil, errors.New("message too short")
	}
	n := binary.BigEndian.Uint32(p)
	if n > maxHeader || int(n) > len(p)-4 {
		return nil, fmt.Errorf("message header length %d out of range", n)
	}
	if err := json.Unmarshal(p[4:4+n], hdr); err != nil {
		return nil, fmt.Errorf("decoding message header: %w", err)
	}
	return p[4+n:], nil
}
