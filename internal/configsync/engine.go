package configsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/store"
)

// Engine is the synchronisation logic of one node without the network:
// it scans the sets' files into versions, compares indexes, and receives
// files from the peer into place. Its methods are safe for concurrent use;
// they run one at a time.
type Engine struct {
	self, peer string
	maxSize    int
	backups    int
	stateDir   string
	sets       map[string]*set
	order      []string
	clk        clock.Clock
	log        *slog.Logger
	run        Runner
	met        *metrics

	mu       sync.Mutex
	entries  map[Key]*entry
	clock    hlc
	dirty    bool // state not yet saved
	localErr map[Key]string
	events   []Event
	counts   map[string]*setCounts
}

type set struct {
	cfg     Set
	root    string // Dir with symlinks resolved
	tr      *transform
	timeout time.Duration
	mode    os.FileMode // of received files; 0: see attrsFor
	owner   *owner      // of received files; nil: see attrsFor
}

type entry struct {
	Meta
	Stat    statKey  `json:"stat"`
	Refused *refusal `json:"refused,omitempty"` // the last remote version refused
	Peer    *Meta    `json:"peer,omitempty"`    // the peer's version, last known
	PeerErr string   `json:"peer_error,omitempty"`
}

type refusal struct {
	VV    VV        `json:"vv"`
	Hash  string    `json:"hash"`
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

type setCounts struct {
	Applied, Conflicts, Failures int
	LastApplied                  time.Time
}

// Event is something an operator should hear about: a conflict, a
// refused or failed file.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // conflict | refused | apply_failed | local_error | peer_refused
	Set    string    `json:"set"`
	Path   string    `json:"path"`
	Detail string    `json:"detail"`
	Copy   string    `json:"copy,omitempty"` // conflict copy written
}

const maxEvents = 50

// unknownSetLabel is the metric label of events about a set this node
// does not have.
const unknownSetLabel = "(unknown)"

// EngineOptions configure an Engine.
type EngineOptions struct {
	Config   Config
	Node     string // this node
	Peer     string // the other node
	StateDir string // where state, backups live (created)
	Clock    clock.Clock
	Logger   *slog.Logger
	Runner   Runner // default ShellRunner
	metrics  *metrics
}

// NewEngine checks the sets, creates missing set dirs and loads the
// persisted versions.
func NewEngine(o EngineOptions) (*Engine, error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Runner == nil {
		o.Runner = ShellRunner{}
	}
	if o.Node == "" || o.Peer == "" || o.Node == o.Peer {
		return nil, fmt.Errorf("config sync needs distinct node and peer names (got %q and %q)", o.Node, o.Peer)
	}
	e := &Engine{
		self: o.Node, peer: o.Peer, maxSize: o.Config.MaxFileSize, backups: o.Config.Backups, stateDir: o.StateDir,
		sets: map[string]*set{}, clk: o.Clock, log: o.Logger, run: o.Runner, met: o.metrics,
		entries: map[Key]*entry{}, localErr: map[Key]string{}, counts: map[string]*setCounts{},
	}
	if e.maxSize <= 0 {
		e.maxSize = DefaultMaxFileSize
	}
	for _, sc := range o.Config.Sets {
		tr, err := newTransform(o.Node, o.Peer, mergeMaps(o.Config.Substitute, sc.Substitute), sc.LocalLines)
		if err != nil {
			return nil, fmt.Errorf("sync set %s: %w", sc.Name, err)
		}
		if err := os.MkdirAll(sc.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating dir of sync set %s: %w", sc.Name, err)
		}
		root, err := filepath.EvalSymlinks(sc.Dir)
		if err != nil {
			return nil, fmt.Errorf("resolving dir of sync set %s: %w", sc.Name, err)
		}
		if len(sc.Files) == 0 {
			sc.Files = []string{"*"}
		}
		mode, err := parseMode(sc.Mode)
		if err != nil {
			return nil, fmt.Errorf("sync set %s: mode: %w", sc.Name, err)
		}
		own, err := parseOwner(sc.Owner)
		if err != nil {
			return nil, fmt.Errorf("sync set %s: owner: %w", sc.Name, err)
		}
		s := &set{cfg: sc, root: root, tr: tr, timeout: sc.Timeout, mode: mode, owner: own}
		if s.timeout <= 0 {
			s.timeout = o.Config.Timeout
		}
		if s.timeout <= 0 {
			s.timeout = DefaultTimeout
		}
		e.sets[sc.Name] = s
		e.order = append(e.order, sc.Name)
		e.counts[sc.Name] = &setCounts{}
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating config sync state directory: %w", err)
	}
	if err := e.load(); err != nil {
		return nil, err
	}
	return e, nil
}

// Fingerprint is what the peer's configuration must match: the sets, and
// each set's substitutions and per-node line patterns.
func (e *Engine) Fingerprint() string {
	fp := ""
	for _, n := range e.order {
		fp += n + "=" + e.sets[n].tr.fingerprint() + ";"
	}
	return hashOf([]byte(fp))[:16]
}

type persisted struct {
	HLC     int64             `json:"hlc"`
	Entries map[string]*entry `json:"entries"`
}

func (e *Engine) statePath() string { return filepath.Join(e.stateDir, "state.json") }

func (e *Engine) load() error {
	b, err := os.ReadFile(e.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading config sync state: %w", err)
	}
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil {
		// The files are the truth: a lost state only costs a full exchange.
		e.log.Warn("config sync state unreadable, starting afresh", "file", e.statePath(), "err", err)
		return nil
	}
	e.clock.last = p.HLC
	for ks, en := range p.Entries {
		var k Key
		for i := range len(ks) {
			if ks[i] == ':' {
				k = Key{Set: ks[:i], Path: ks[i+1:]}
				break
			}
		}
		// A file the configuration no longer includes is not tracked.
		if s, ok := e.sets[k.Set]; ok && en != nil && en.VV != nil && s.allowed(k.Path) == nil {
			e.entries[k] = en
		}
	}
	return nil
}

// Save writes the versions to disk if they changed.
func (e *Engine) Save() error {
	e.mu.Lock()
	if !e.dirty {
		e.mu.Unlock()
		return nil
	}
	p := persisted{HLC: e.clock.last, Entries: make(map[string]*entry, len(e.entries))}
	for k, en := range e.entries {
		p.Entries[k.String()] = en
	}
	b, err := json.Marshal(p)
	e.dirty = false
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding config sync state: %w", err)
	}
	if err := store.WriteFileAtomic(e.statePath(), b, 0o600); err != nil {
		return fmt.Errorf("saving config sync state: %w", err)
	}
	return nil
}

func (e *Engine) event(ev Event) {
	ev.At = e.clk.Now()
	e.events = append(e.events, ev)
	if len(e.events) > maxEvents {
		e.events = e.events[len(e.events)-maxEvents:]
	}
	c := e.counts[ev.Set]
	label := ev.Set
	if c == nil {
		// An unknown set named by the peer: counted under one label, so
		// the peer cannot grow the metric series.
		c, label = &setCounts{}, unknownSetLabel
	}
	switch ev.Kind {
	case "conflict":
		c.Conflicts++
		e.met.conflict(label)
		e.log.Warn("config sync conflict", "set", ev.Set, "path", ev.Path, "reason", ev.Detail, "copy", ev.Copy)
	default:
		c.Failures++
		e.met.failure(label, ev.Kind)
		e.log.Error("config sync "+ev.Kind, "set", ev.Set, "path", ev.Path, "reason", ev.Detail)
	}
}

func (e *Engine) path(s *set, rel string) string {
	return filepath.Join(s.root, filepath.FromSlash(rel))
}

// listLocked returns the files of set s as they are on disk now.
func (e *Engine) listLocked(s *set) map[string]bool {
	found := map[string]bool{}
	for _, p := range s.cfg.Files {
		matches, _ := filepath.Glob(filepath.Join(s.root, p))
		for _, m := range matches {
			rel, err := filepath.Rel(s.root, m)
			if err != nil {
				continue
			}
			rel = filepath.ToSlash(rel)
			if s.allowed(rel) != nil {
				continue
			}
			found[rel] = true
		}
	}
	return found
}

// ScanAll reads every set and turns local edits into new versions; it
// returns the keys that changed.
func (e *Engine) ScanAll() []Key {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.scanAllLocked()
}

func (e *Engine) scanAllLocked() []Key {
	var changed []Key
	for _, n := range e.order {
		s := e.sets[n]
		found := e.listLocked(s)
		for k := range e.entries {
			if k.Set == n {
				found[k.Path] = true
			}
		}
		for _, rel := range sortedKeys(found) {
			k := Key{n, rel}
			if _, ch, _ := e.scanKeyLocked(k, false); ch {
				changed = append(changed, k)
			}
		}
	}
	return changed
}

// ScanPaths rescans the given absolute paths (from file-system events);
// it returns the keys that changed.
func (e *Engine) ScanPaths(paths []string) []Key {
	e.mu.Lock()
	defer e.mu.Unlock()
	var changed []Key
	for _, p := range paths {
		for _, n := range e.order {
			s := e.sets[n]
			rel, err := filepath.Rel(s.root, p)
			if err != nil || !filepath.IsLocal(rel) {
				continue
			}
			k := Key{n, filepath.ToSlash(rel)}
			if s.allowed(k.Path) != nil {
				continue
			}
			if _, ch, _ := e.scanKeyLocked(k, false); ch {
				changed = append(changed, k)
			}
		}
	}
	return changed
}

func (e *Engine) setLocalErr(k Key, msg string) {
	if msg == "" {
		delete(e.localErr, k)
		return
	}
	if e.localErr[k] != msg {
		e.localErr[k] = msg
		e.event(Event{Kind: "local_error", Set: k.Set, Path: k.Path, Detail: msg})
	}
}

// scanKeyLocked brings k's version up to date with the file on disk. It
// returns the canonical content when want is set (or when it had to read
// it anyway) and whether a new version was made.
func (e *Engine) scanKeyLocked(k Key, want bool) ([]byte, bool, error) {
	s := e.sets[k.Set]
	if s == nil {
		return nil, false, fmt.Errorf("%w: unknown sync set %q", ErrRefused, k.Set)
	}
	// Keys arrive from the wire (a want, a get): only a set's own files
	// are ever read.
	if err := s.allowed(k.Path); err != nil {
		return nil, false, err
	}
	p := e.path(s, k.Path)
	en := e.entries[k]
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		e.setLocalErr(k, "")
		if en == nil || en.Deleted {
			return nil, false, nil
		}
		e.newVersion(k, en, Meta{Deleted: true}, statKey{}, e.clk.Now())
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("checking %s: %w", p, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		target, _ := filepath.EvalSymlinks(p)
		if !within(s.root, target) {
			err := fmt.Errorf("%w: %s is a symlink to %s, outside the set's dir %s", ErrRefused, p, target, s.root)
			e.setLocalErr(k, err.Error())
			return nil, false, err
		}
		return nil, false, nil // symlinks are not synced
	}
	if !fi.Mode().IsRegular() {
		return nil, false, nil
	}
	if real, err := filepath.EvalSymlinks(filepath.Dir(p)); err != nil || !within(s.root, real) {
		err := fmt.Errorf("%w: %s lies under a symlink leading outside the set's dir %s", ErrRefused, p, s.root)
		e.setLocalErr(k, err.Error())
		return nil, false, err
	}
	if fi.Size() > int64(e.maxSize) {
		err := fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit (sync.max_file_size)", ErrRefused, p, fi.Size(), e.maxSize)
		e.setLocalErr(k, err.Error())
		return nil, false, err
	}
	st := trustedStat(fi)
	m := metaOf(fi)
	if en != nil && !en.Deleted && st != (statKey{}) && en.Stat == st && !want {
		return nil, false, nil
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", p, err)
	}
	canon, err := s.tr.encode(raw)
	if err != nil {
		err = fmt.Errorf("%w: %s: %w", ErrRefused, p, err)
		e.setLocalErr(k, err.Error())
		return nil, false, err
	}
	e.setLocalErr(k, "")
	m.Hash = hashOf(canon)
	m.Size = int64(len(canon))
	if en != nil && !en.Deleted && en.Hash == m.Hash && en.Mode == m.Mode && en.UID == m.UID && en.GID == m.GID {
		if en.Stat != st {
			en.Stat = st
			e.dirty = true
		}
		return canon, false, nil
	}
	// The edit's physical time is when the file was written, so that of
	// two concurrent edits the later write wins, however late each node
	// noticed its own (a node that was down notices at start).
	wall := fi.ModTime()
	if now := e.clk.Now(); wall.After(now) {
		wall = now
	}
	e.newVersion(k, en, m, st, wall)
	return canon, true, nil
}

// trustedStat is the file's stat key, or the zero key when the file was
// modified too recently for its timestamps to tell a later same-size
// rewrite apart (the zero key makes the next scan read the content). File
// timestamps are wall-clock, so this compares with the real clock.
func trustedStat(fi os.FileInfo) statKey {
	if time.Since(fi.ModTime()) < 2*time.Second {
		return statKey{}
	}
	return statOf(fi)
}

// newVersion records a local edit of k.
func (e *Engine) newVersion(k Key, old *entry, m Meta, st statKey, wall time.Time) {
	vv := VV{}
	var peer *Meta
	if old != nil {
		vv = old.VV.Clone()
		peer = old.Peer
	}
	vv[e.self]++
	m.VV, m.At, m.Node = vv, e.clock.now(wall), e.self
	e.entries[k] = &entry{Meta: m, Stat: st, Peer: peer}
	e.dirty = true
}

// Index lists every version this node holds, after a scan.
func (e *Engine) Index() []indexEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scanAllLocked()
	out := make([]indexEntry, 0, len(e.entries))
	for k, en := range e.entries {
		out = append(out, indexEntry{Key: k, Meta: en.Meta})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// CompareIndex takes the peer's index and returns the keys this node
// needs from the peer and those the peer needs from this node.
func (e *Engine) CompareIndex(remote []indexEntry) (need, push []Key) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scanAllLocked()
	seen := map[Key]bool{}
	for _, r := range remote {
		if e.sets[r.Set] == nil || r.VV == nil {
			continue
		}
		seen[r.Key] = true
		en := e.entries[r.Key]
		if en == nil {
			if !r.Deleted {
				need = append(need, r.Key)
			}
			continue
		}
		rm := r.Meta
		en.Peer = &rm
		e.dirty = true
		switch r.VV.Compare(en.VV) {
		case After, Concurrent:
			if en.Refused != nil && en.Refused.Hash == r.Hash && en.Refused.VV.Compare(r.VV) == Equal {
				continue // already refused; the peer is told by status
			}
			need = append(need, r.Key)
		case Before:
			push = append(push, r.Key)
		case Equal:
			if r.Hash != en.Hash || r.Deleted != en.Deleted {
				need = append(need, r.Key)
			}
		}
	}
	for k, en := range e.entries {
		if !seen[k] && !(en.Deleted && en.Peer == nil) {
			push = append(push, k)
		}
	}
	sort.Slice(push, func(i, j int) bool { return push[i].String() < push[j].String() })
	return need, push
}

// Outgoing returns the current version of k and its canonical content
// (nil for a deletion), scanning it first. ok is false when there is
// nothing to send.
func (e *Engine) Outgoing(k Key) (h fileHeader, content []byte, ok bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Keys named by the peer (a get, a want) outside every set's files
	// are refused and counted: a probe for what it may not read.
	if err := e.keyAllowedLocked(k); err != nil {
		e.event(Event{Kind: "refused", Set: truncate(k.Set, 64), Path: truncate(k.Path, 256), Detail: "the peer asked for it: " + err.Error()})
		return h, nil, false, err
	}
	content, _, err = e.scanKeyLocked(k, true)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			// A symlink leading out, a file over the size limit: each
			// request for it is counted, not only the scan that met it.
			e.event(Event{Kind: "refused", Set: k.Set, Path: truncate(k.Path, 256), Detail: "the peer asked for it: " + err.Error()})
		}
		return h, nil, false, err
	}
	en := e.entries[k]
	if en == nil {
		return h, nil, false, nil
	}
	if !en.Deleted && content == nil {
		return h, nil, false, fmt.Errorf("%s vanished while being read", k)
	}
	return fileHeader{Key: k, Meta: en.Meta, Sent: e.clk.Now().UnixNano()}, content, true, nil
}

// RefuseStream records a stream from the peer closed for what it sent (a
// frame over the link's limit), counted as refused under no set.
func (e *Engine) RefuseStream(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.event(Event{Kind: "refused", Detail: "stream from the peer closed: " + err.Error()})
}

// keyAllowedLocked refuses a key outside every set's files.
func (e *Engine) keyAllowedLocked(k Key) error {
	s := e.sets[k.Set]
	if s == nil {
		return fmt.Errorf("%w: unknown sync set %q", ErrRefused, truncate(k.Set, 64))
	}
	return s.allowed(k.Path)
}

// Receive handles a file the peer sent: it returns the acknowledgement to
// send back, and whether this node's version of the file changed in a way
// the peer must hear about (a merged conflict, a newer local version).
func (e *Engine) Receive(ctx context.Context, h fileHeader, content []byte) (a ack, pushBack bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a = ack{Key: h.Key, Sent: h.Sent}
	fail := func(kind string, err error) (ack, bool) {
		a.Error = err.Error()
		if en := e.entries[h.Key]; en != nil {
			a.Local = en.Meta
		}
		e.event(Event{Kind: kind, Set: h.Set, Path: h.Path, Detail: err.Error()})
		return a, false
	}
	s := e.sets[h.Set]
	if s == nil {
		return fail("refused", fmt.Errorf("%w: unknown sync set %q", ErrRefused, h.Set))
	}
	if err := s.allowed(h.Path); err != nil {
		return fail("refused", err)
	}
	if h.VV == nil {
		return fail("refused", fmt.Errorf("%w: %s arrived without a version", ErrRefused, h.Key))
	}
	// Node names from the wire name conflict copies: only the pair's own
	// two names are accepted.
	if h.Node != e.self && h.Node != e.peer {
		return fail("refused", fmt.Errorf("%w: %s was edited by %q, neither %s nor %s", ErrRefused, h.Key, truncate(h.Node, 64), e.self, e.peer))
	}
	if c := h.Conf; c != nil && c.Loser != e.self && c.Loser != e.peer {
		return fail("refused", fmt.Errorf("%w: %s names %q as a conflict's loser, neither %s nor %s", ErrRefused, h.Key, truncate(c.Loser, 64), e.self, e.peer))
	}
	if !h.Deleted {
		if len(content) > e.maxSize {
			return fail("refused", fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit (sync.max_file_size)", ErrRefused, h.Key, len(content), e.maxSize))
		}
		if hashOf(content) != h.Hash {
			return fail("refused", fmt.Errorf("%w: %s: content does not match its hash", ErrRefused, h.Key))
		}
	}
	// An edit made here but not scanned yet must count before the
	// comparison, or it would be overwritten unseen.
	if _, _, err := e.scanKeyLocked(h.Key, false); err != nil && !errors.Is(err, ErrRefused) {
		return fail("local_error", err)
	}
	en := e.entries[h.Key]
	local := Meta{VV: VV{}, Deleted: true}
	if en != nil {
		local = en.Meta
	}
	remote := h.Meta
	ord := remote.VV.Compare(local.VV)
	sameContent := remote.Deleted == local.Deleted && (remote.Deleted || remote.Hash == local.Hash)
	if ord == Equal && !sameContent {
		ord = Concurrent
	}
	if en != nil && en.Refused != nil && en.Refused.Hash == remote.Hash && en.Refused.VV.Compare(remote.VV) == Equal {
		a.Local, a.Error = local, en.Refused.Error
		return a, false
	}
	switch ord {
	case Equal, Before:
		a.OK, a.Local = true, local
		if en != nil {
			en.Peer = &remote
			e.dirty = true
		}
		return a, ord == Before
	}
	result := remote
	var loser *Meta
	loserIsLocal := false
	if ord == Concurrent {
		result.VV = local.VV.Merge(remote.VV)
		if !sameContent {
			if wins(remote, local) {
				l := local
				loser, loserIsLocal = &l, true
			} else {
				r := remote
				loser = &r
				result = local
				result.VV = local.VV.Merge(remote.VV)
			}
			result.Conf = &Conflict{Loser: loser.Node, LoserHash: loser.Hash, At: e.clk.Now().UnixNano()}
		} else if !wins(remote, local) {
			result = local
			result.VV = local.VV.Merge(remote.VV)
		}
	} else if c := remote.Conf; c != nil && c.Loser == e.self && !local.Deleted && local.Hash == c.LoserHash {
		// The peer resolved a conflict against this node's edit.
		l := local
		loser, loserIsLocal = &l, true
	}
	changed, err := e.install(ctx, s, h.Key, en, result, content, loser, loserIsLocal)
	if err != nil {
		kind := "local_error"
		switch {
		case errors.Is(err, ErrApplyFailed):
			kind = "apply_failed"
		case errors.Is(err, ErrRefused):
			kind = "refused"
		}
		if en == nil {
			en = &entry{Meta: Meta{VV: VV{}, Deleted: true}}
			e.entries[h.Key] = en
		}
		if kind == "refused" {
			// Validation verdicts are kept: the same version is not tried
			// again. A failed apply or a local I/O error (a full disk, a
			// sandbox denying a call) is retried at the next comparison.
			en.Refused = &refusal{VV: remote.VV.Clone(), Hash: remote.Hash, Error: err.Error(), At: e.clk.Now()}
		}
		en.Peer = &remote
		e.dirty = true
		return fail(kind, err)
	}
	en = e.entries[h.Key]
	en.Peer = &remote
	a.OK, a.Applied, a.Local = true, changed, en.Meta
	if changed {
		c := e.counts[h.Set]
		c.Applied++
		c.LastApplied = e.clk.Now()
		e.met.applied(h.Set)
		e.log.Info("config sync applied", "set", h.Set, "path", h.Path, "from", remote.Node, "deleted", remote.Deleted)
	}
	// The peer must learn a version it does not hold yet.
	return a, result.VV.Compare(remote.VV) != Equal || result.Hash != remote.Hash
}

// install makes result k's version: it writes the content (result is the
// remote version) or keeps the local one, saving a conflict loser beside
// the file first. It reports whether the file on disk changed.
func (e *Engine) install(ctx context.Context, s *set, k Key, en *entry, result Meta, content []byte, loser *Meta, loserIsLocal bool) (bool, error) {
	dest, err := s.destination(k.Path)
	if err != nil {
		return false, err
	}
	current, _ := os.ReadFile(dest)
	var local Meta
	if en != nil {
		local = en.Meta
	}
	keepLocal := en != nil && result.Node == local.Node && result.At == local.At && result.Hash == local.Hash && result.Deleted == local.Deleted
	saveLoser := func() (string, error) {
		if loser == nil || loser.Deleted {
			return "", nil
		}
		data := current
		if !loserIsLocal {
			d, err := s.tr.decode(content, current)
			if err != nil {
				return "", fmt.Errorf("%w: converting the peer's losing version of %s: %w", ErrRefused, k, err)
			}
			data = d
		}
		return e.writeConflictCopy(dest, loser.Node, data)
	}
	record := func(copyPath string) {
		if loser != nil {
			e.event(Event{Kind: "conflict", Set: k.Set, Path: k.Path, Copy: copyPath,
				Detail: fmt.Sprintf("concurrent edits by %s and %s: kept %s's (the later write), saved %s's beside the file", result.Node, loser.Node, result.Node, loser.Node)})
		}
	}
	finish := func(changed bool) (bool, error) {
		var st statKey
		if fi, err := os.Lstat(dest); err == nil {
			st = trustedStat(fi)
			// Mode and owner are this node's own: the version records
			// them as they are here, so the next scan sees no edit.
			m := metaOf(fi)
			result.Mode, result.UID, result.GID = m.Mode, m.UID, m.GID
		}
		e.entries[k] = &entry{Meta: result, Stat: st}
		e.dirty = true
		return changed, nil
	}
	if keepLocal || (!result.Deleted && result.Hash == local.Hash && !local.Deleted && en != nil) {
		// Same content: only the version (and maybe mode or owner) moves.
		cp, err := saveLoser()
		if err != nil {
			return false, err
		}
		record(cp)
		if fi, err := os.Lstat(dest); err == nil && !keepLocal {
			chmod := func(m os.FileMode) error { return os.Chmod(dest, m) }
			chown := func(uid, gid int) error { return os.Lchown(dest, uid, gid) }
			if err := e.applyAttrs(dest, fi, s.attrsFor(fi, result), chmod, chown); err != nil {
				return false, err
			}
		}
		return finish(false)
	}
	if result.Deleted {
		cp, err := saveLoser()
		if err != nil {
			return false, err
		}
		if err := e.remove(ctx, s, k.Path, dest); err != nil {
			return false, err
		}
		record(cp)
		return finish(current != nil)
	}
	data, err := s.tr.decode(content, current)
	if err != nil {
		return false, fmt.Errorf("%w: converting %s for this node: %w", ErrRefused, k, err)
	}
	if len(data) > e.maxSize {
		return false, fmt.Errorf("%w: %s would be %d bytes here, over the %d-byte limit", ErrRefused, k, len(data), e.maxSize)
	}
	st, err := e.stage(ctx, s, dest, data, result)
	if err != nil {
		return false, err
	}
	cp, err := saveLoser()
	if err != nil {
		st.discard()
		return false, err
	}
	if err := e.commit(ctx, s, k.Path, st); err != nil {
		return false, err
	}
	record(cp)
	return finish(true)
}

// HandleAck records the peer's answer to a file this node sent; it
// returns true when the peer now holds this node's current version.
func (e *Engine) HandleAck(a ack) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.entries[a.Key]
	if en == nil {
		return false
	}
	if a.Local.VV != nil {
		l := a.Local
		en.Peer = &l
		e.dirty = true
	}
	if !a.OK {
		if en.PeerErr != a.Error {
			en.PeerErr = a.Error
			e.event(Event{Kind: "peer_refused", Set: a.Set, Path: a.Path, Detail: a.Error})
		}
		return false
	}
	en.PeerErr = ""
	return a.Local.VV.Compare(en.VV) == Equal && a.Local.Hash == en.Hash
}
