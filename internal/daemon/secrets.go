package daemon

import (
	"fmt"
	"os"
	"strings"

	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/heartbeat"
	"github.com/batonha/baton/internal/store"
)

// minTokenSize is the shortest API token accepted.
const minTokenSize = 16

// CheckSecrets reads the key and token files as `baton run` does (they
// exist, are readable and long enough) and returns an error naming the
// key and the path of the first that is not, so that `baton validate` in
// a unit's ExecStartPre stops a start that would fail. Files that the
// group or others may read are returned as warnings.
func CheckSecrets(cfg *config.Config) (warnings []string, err error) {
	var files []string
	if cfg.Peer.Name != "" { // a node without a peer sends no heartbeats
		files = append([]string{cfg.Heartbeat.KeyFile}, cfg.Heartbeat.KeyFiles...)
		if _, err := heartbeat.LoadKeys(files...); err != nil {
			return nil, fmt.Errorf("loading heartbeat key (heartbeat.key_file): %w", err)
		}
	}
	if cfg.API.TokenFile != "" {
		if _, err := readToken(cfg.API.TokenFile); err != nil {
			return nil, err
		}
		files = append(files, cfg.API.TokenFile)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("checking secret file %s: %w", f, err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			warnings = append(warnings, fmt.Sprintf("%s is readable by group or others (mode %04o); chmod 600 it", f, perm))
		}
	}
	return warnings, nil
}

// readToken reads the API bearer token (api.token_file).
func readToken(path string) (string, error) {
	b, err := store.ReadSecret(path, nil) // refuses a file others may write
	if err != nil {
		return "", fmt.Errorf("reading API token (api.token_file): %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < minTokenSize {
		return "", fmt.Errorf("API token in %s (api.token_file) is shorter than %d characters", path, minTokenSize)
	}
	return token, nil
}
