package configsync

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Versions. Each file carries a version vector: one counter per node,
// bumped by the node that edits the file. A received version that
// dominates the local one replaces it; one the local version dominates is
// stale and ignored (the peer is sent ours). Neither dominating is a
// conflict: both nodes edited since they last agreed.
//
// Conflict rule: each edit also carries a timestamp — when the file was
// written (its modification time in nanoseconds, capped at the node's
// clock, and kept strictly increasing among the node's own edits) — and
// the editing node. Of two concurrent edits the one with the higher
// (timestamp, node name, content hash) wins, on both nodes alike, so both
// pick the same winner without talking: the later write wins, whenever
// each node noticed it (a node that was down notices at start). Causality
// never depends on the timestamps (the vectors carry it), so clock skew
// between the nodes can only change which of two concurrent edits wins,
// never lose one. The resolved version's vector is the element-wise
// maximum of the two, which dominates both, so the resolution itself
// propagates like an ordinary edit. The losing content is kept beside the
// file as <file>.baton-conflict-<node>-<time> on the node that resolved
// the conflict and on the node whose edit lost.

// VV is a version vector: node name → number of edits by that node.
type VV map[string]uint64

// Order is how two version vectors relate.
type Order int

// Orders.
const (
	Equal Order = iota
	Before
	After
	Concurrent
)

func (o Order) String() string {
	return [...]string{"equal", "before", "after", "concurrent"}[o]
}

// Compare tells whether v is Before, After, Equal to or Concurrent with o.
func (v VV) Compare(o VV) Order {
	less, more := false, false
	for k, a := range v {
		if b := o[k]; a > b {
			more = true
		} else if a < b {
			less = true
		}
	}
	for k, b := range o {
		if _, ok := v[k]; !ok && b > 0 {
			less = true
		}
	}
	switch {
	case less && more:
		return Concurrent
	case less:
		return Before
	case more:
		return After
	}
	return Equal
}

// Merge is the element-wise maximum.
func (v VV) Merge(o VV) VV {
	out := v.Clone()
	for k, b := range o {
		if b > out[k] {
			out[k] = b
		}
	}
	return out
}

// Clone copies v.
func (v VV) Clone() VV {
	out := make(VV, len(v)+1)
	for k, a := range v {
		out[k] = a
	}
	return out
}

// hlc stamps this node's edits: wall-clock nanoseconds, strictly
// increasing.
type hlc struct{ last int64 }

// now returns a timestamp after every one returned so far.
func (h *hlc) now(wall time.Time) int64 {
	t := wall.UnixNano()
	if t <= h.last {
		t = h.last + 1
	}
	h.last = t
	return t
}

// wins reports whether edit a beats concurrent edit b.
func wins(a, b Meta) bool {
	if a.At != b.At {
		return a.At > b.At
	}
	if a.Node != b.Node {
		return a.Node > b.Node
	}
	return a.Hash > b.Hash
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
