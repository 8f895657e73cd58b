package heartbeat

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/batonha/baton/internal/store"
)

// MinKeySize is the shortest pre-shared key accepted, in bytes.
const MinKeySize = 16

// LoadKeys reads one pre-shared key from each file: the file's bytes with
// surrounding whitespace trimmed. Messages are signed with the first key and
// accepted under any of them, which allows a key to be rotated.
func LoadKeys(paths ...string) ([][]byte, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("loading heartbeat keys: no key file given")
	}
	keys := make([][]byte, 0, len(paths))
	for _, p := range paths {
		// A key others may write is a key others may choose.
		if _, err := store.CheckFileMode(p, store.Secret); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("heartbeat key file: %w", err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading heartbeat key file %s: %w", p, err)
		}
		k := bytes.TrimSpace(b)
		if len(k) < MinKeySize {
			return nil, fmt.Errorf("heartbeat key file %s: key is %d bytes, need at least %d", p, len(k), MinKeySize)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
