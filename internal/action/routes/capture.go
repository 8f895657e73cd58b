package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/batonha/baton/internal/store"
)

// CaptureFile is the name of the capture inside the state directory.
const CaptureFile = "routes.json"

const captureVersion = 1

// Owned is one route this node holds: captured while it pointed here, or
// about to be pointed here by a takeover in progress.
type Owned struct {
	Table       string    `json:"table"`
	Destination string    `json:"destination"`
	Name        string    `json:"name,omitempty"` // Azure route name
	Since       time.Time `json:"since"`
}

func (o Owned) key() string { return o.Table + "|" + o.Destination }

type captureDoc struct {
	Version int     `json:"version"`
	Cloud   string  `json:"cloud"`
	Routes  []Owned `json:"routes"`
}

// decodeCapture parses a capture file. It rejects unknown versions, another
// cloud's capture, and entries without a table or destination, so that a
// damaged file never makes baton touch a route it does not own.
func decodeCapture(data []byte, cloud string) (map[string]Owned, error) {
	var doc captureDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decoding route capture: %w", err)
	}
	if doc.Version != captureVersion {
		return nil, fmt.Errorf("decoding route capture: version %d, want %d", doc.Version, captureVersion)
	}
	if doc.Cloud != cloud {
		return nil, fmt.Errorf("decoding route capture: it is for cloud %q, configured cloud is %q", doc.Cloud, cloud)
	}
	out := make(map[string]Owned, len(doc.Routes))
	for i, o := range doc.Routes {
		if o.Table == "" || o.Destination == "" {
			return nil, fmt.Errorf("decoding route capture: entry %d lacks a table or destination", i)
		}
		out[o.key()] = o
	}
	return out, nil
}

func encodeCapture(cloud string, owned map[string]Owned) ([]byte, error) {
	doc := captureDoc{Version: captureVersion, Cloud: cloud, Routes: make([]Owned, 0, len(owned))}
	for _, o := range owned {
		doc.Routes = append(doc.Routes, o)
	}
	slices.SortFunc(doc.Routes, func(a, b Owned) int {
		if a.Table != b.Table {
			if a.Table < b.Table {
				return -1
			}
			return 1
		}
		switch {
		case a.Destination < b.Destination:
			return -1
		case a.Destination > b.Destination:
			return 1
		}
		return 0
	})
	return json.MarshalIndent(doc, "", "  ")
}

// loadCapture reads dir/routes.json; a missing file is an empty capture.
func loadCapture(dir, cloud string) (map[string]Owned, error) {
	path := filepath.Join(dir, CaptureFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Owned{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading route capture %s: %w", path, err)
	}
	m, err := decodeCapture(data, cloud)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// saveCapture writes dir/routes.json atomically.
func saveCapture(dir, cloud string, owned map[string]Owned) error {
	data, err := encodeCapture(cloud, owned)
	if err != nil {
		return fmt.Errorf("encoding route capture: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating state dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, CaptureFile)
	if err := store.WriteFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("writing route capture %s: %w", path, err)
	}
	return nil
}
