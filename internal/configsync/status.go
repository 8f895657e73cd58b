package configsync

import (
	"sort"
	"time"
)

// Status is config sync's state, for `baton sync status` and the API.
type Status struct {
	Node        string      `json:"node"`
	Peer        string      `json:"peer"`
	Connected   bool        `json:"connected"` // the stream to the peer is up
	LastError   string      `json:"last_error,omitempty"`
	Fingerprint string      `json:"fingerprint"`
	Sets        []SetStatus `json:"sets"`
	Events      []Event     `json:"events,omitempty"` // recent conflicts and failures, oldest first
}

// SetStatus is one set's state.
type SetStatus struct {
	Name        string       `json:"name"`
	Dir         string       `json:"dir"`
	Files       int          `json:"files"`   // files present
	Pending     int          `json:"pending"` // files whose version the peer does not hold (yet)
	Applied     int          `json:"applied"` // files received and put in place since start
	Conflicts   int          `json:"conflicts"`
	Failures    int          `json:"failures"`
	LastSync    time.Time    `json:"last_sync,omitzero"`    // last full comparison with the peer
	LastApplied time.Time    `json:"last_applied,omitzero"` // last file put in place
	FileList    []FileStatus `json:"file_list,omitempty"`   // every file (detailed status) or only those with problems
}

// FileStatus is one file's versions on both sides.
type FileStatus struct {
	Path      string   `json:"path"`
	Local     Version  `json:"local"`
	Peer      *Version `json:"peer,omitempty"` // last known; nil if never heard
	Pending   bool     `json:"pending"`
	Error     string   `json:"error,omitempty"`      // why this node refused the peer's version, or cannot read its own
	PeerError string   `json:"peer_error,omitempty"` // why the peer refused this node's version
}

// Version describes a version of a file.
type Version struct {
	VV      VV        `json:"vv"`
	Hash    string    `json:"hash,omitempty"` // first 12 hex digits
	Node    string    `json:"node,omitempty"` // who made the edit
	At      time.Time `json:"at,omitzero"`
	Deleted bool      `json:"deleted,omitempty"`
}

func versionOf(m Meta) Version {
	h := m.Hash
	if len(h) > 12 {
		h = h[:12]
	}
	v := Version{VV: m.VV, Hash: h, Node: m.Node, Deleted: m.Deleted}
	if m.At > 0 {
		v.At = time.Unix(0, m.At).UTC()
	}
	return v
}

// Status returns the current state; detailed lists every file, else only
// files with problems.
func (s *Syncer) Status(detailed bool) Status {
	s.mu.Lock()
	st := Status{Node: s.eng.self, Peer: s.eng.peer, Connected: s.connected, LastError: s.lastErr}
	lastSync := s.lastSync
	waiting := map[Key]bool{}
	for k := range s.pending {
		waiting[k] = true
	}
	for k := range s.inflight {
		waiting[k] = true
	}
	s.mu.Unlock()
	st.Fingerprint = s.eng.Fingerprint()
	st.Sets = s.eng.status(detailed, waiting, lastSync)
	s.eng.mu.Lock()
	st.Events = append([]Event(nil), s.eng.events...)
	s.eng.mu.Unlock()
	return st
}

func (e *Engine) status(detailed bool, waiting map[Key]bool, lastSync time.Time) []SetStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	byName := map[string]*SetStatus{}
	var out []SetStatus
	for _, n := range e.order {
		c := e.counts[n]
		out = append(out, SetStatus{Name: n, Dir: e.sets[n].cfg.Dir, Applied: c.Applied, Conflicts: c.Conflicts,
			Failures: c.Failures, LastSync: lastSync, LastApplied: c.LastApplied})
	}
	for i := range out {
		byName[out[i].Name] = &out[i]
	}
	keys := make([]Key, 0, len(e.entries))
	for k := range e.entries {
		keys = append(keys, k)
	}
	for k := range e.localErr {
		if e.entries[k] == nil {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		ss := byName[k.Set]
		if ss == nil {
			continue
		}
		en := e.entries[k]
		fs := FileStatus{Path: k.Path, Error: e.localErr[k]}
		if en != nil {
			fs.Local = versionOf(en.Meta)
			if en.Peer != nil {
				v := versionOf(*en.Peer)
				fs.Peer = &v
			}
			fs.PeerError = en.PeerErr
			if en.Refused != nil && fs.Error == "" {
				fs.Error = "refused the peer's version: " + en.Refused.Error
			}
			if !en.Deleted {
				ss.Files++
			}
			fs.Pending = waiting[k] || en.Peer == nil && !en.Deleted ||
				en.Peer != nil && (en.Peer.VV.Compare(en.VV) != Equal || en.Peer.Hash != en.Hash)
		}
		if fs.Pending {
			ss.Pending++
		}
		if detailed || fs.Error != "" || fs.PeerError != "" || (fs.Pending && len(ss.FileList) < 20) {
			ss.FileList = append(ss.FileList, fs)
		}
	}
	return out
}
