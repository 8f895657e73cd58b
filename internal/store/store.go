// Package store persists the little state baton must remember across
// restarts (last role, term, since when) in the state directory, and offers
// the atomic file write it uses to other packages.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileName is the name of the state file inside the state directory.
const FileName = "state.json"

// formatVersion is written into every state file; Load refuses newer ones.
const formatVersion = 1

// State is what baton remembers across restarts.
type State struct {
	Role  string    `json:"role"`
	Term  uint64    `json:"term"`
	Since time.Time `json:"since"`
	Node  string    `json:"node"`
	// HighestTerm is the highest term the node has seen, its own or the
	// peer's: the next takeover takes one more.
	HighestTerm uint64 `json:"highest_term,omitempty"`
	// Maintenance: the operator put the node in maintenance; it stays
	// there across restarts until `baton maintenance off`.
	Maintenance bool `json:"maintenance,omitempty"`
	// Epoch counts the daemon's starts; heartbeats carry it so that the
	// peer tells a restart from a replay, whatever the wall clock says.
	Epoch uint64 `json:"epoch,omitempty"`
	// Extra holds state of later features, keyed by feature, so that an
	// older binary keeps what it does not understand.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// fileState is the on-disk form of State.
type fileState struct {
	Version int `json:"version"`
	State
}

// Store reads and writes the state file of one state directory. Its
// methods are safe for concurrent use.
type Store struct {
	mu   sync.Mutex
	dir  string
	path string
}

// Open prepares dir (creating it with mode 0700 when missing) and returns
// a Store for the state file in it.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("opening state store: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("checking state directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("opening state store: %s is not a directory", dir)
	}
	return &Store{dir: dir, path: filepath.Join(dir, FileName)}, nil
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Load reads the state file. A missing file is not an error: it returns
// false. A file that cannot be decoded is an error naming the file.
func (s *Store) Load() (State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("reading state file %s: %w", s.path, err)
	}
	st, err := Decode(data)
	if err != nil {
		return State{}, false, fmt.Errorf("decoding state file %s: %w", s.path, err)
	}
	return st, true, nil
}

// Save replaces the state file atomically with st (mode 0600).
func (s *Store) Save(st State) error {
	data, err := Encode(st)
	if err != nil {
		return fmt.Errorf("encoding state for %s: %w", s.path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := WriteFileAtomic(s.path, data, 0o600); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	return nil
}

// Encode returns the file form of st.
func Encode(st State) ([]byte, error) {
	data, err := json.MarshalIndent(fileState{Version: formatVersion, State: st}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Decode parses the file form of a State. It rejects trailing data,
// unknown versions and a missing version.
func Decode(data []byte) (State, error) {
	var fst fileState
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&fst); err != nil {
		return State{}, fmt.Errorf("parsing JSON: %w", err)
	}
	if dec.More() {
		return State{}, errors.New("trailing data after the JSON object")
	}
	switch {
	case fst.Version == 0:
		return State{}, errors.New("missing format version")
	case fst.Version > formatVersion:
		return State{}, fmt.Errorf("format version %d is newer than supported version %d", fst.Version, formatVersion)
	case fst.Version < 0:
		return State{}, fmt.Errorf("invalid format version %d", fst.Version)
	}
	return fst.State, nil
}
