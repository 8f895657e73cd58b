package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validate checks the key and token files as run does, so that a unit
// validating in ExecStartPre never restart-loops on a missing key.
func TestValidateChecksSecretFiles(t *testing.T) {
	dir := t.TempDir()
	key, token := filepath.Join(dir, "hb.key"), filepath.Join(dir, "api.token")
	write := func(path, content string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "baton.yaml")
	write(cfg, "node: {name: nva-1}\nheartbeat: {key_file: "+key+"}\n"+
		"peer: {name: nva-2, paths: [{name: a, address: \"10.0.0.2:5405\"}]}\n"+
		"api: {listen: \"127.0.0.1:0\", token_file: "+token+", insecure: true}\n", 0o644)
	cases := []struct {
		name          string
		prepare       func()
		code          int
		stderr        string
		stderrMissing string
	}{
		{"missing key", func() { os.Remove(key); write(token, strings.Repeat("t", 32), 0o600) }, 2, key, ""},
		{"short key", func() { write(key, "short", 0o600) }, 2, key, ""},
		{"short token", func() { write(key, strings.Repeat("k", 32), 0o600); write(token, "tiny", 0o600) }, 2, token, ""},
		{"world-readable key warns", func() { write(token, strings.Repeat("t", 32), 0o600); write(key, strings.Repeat("k", 32), 0o644) }, 0, "warning: " + key, ""},
		{"all good", func() { write(key, strings.Repeat("k", 32), 0o600) }, 0, "", "warning"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare()
			var out, errb bytes.Buffer
			code := Run([]string{"validate", "--config", cfg}, &out, &errb, nil)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q does not name %q", errb.String(), tc.stderr)
			}
			if tc.stderrMissing != "" && strings.Contains(errb.String(), tc.stderrMissing) {
				t.Errorf("stderr %q has %q", errb.String(), tc.stderrMissing)
			}
		})
	}
}
