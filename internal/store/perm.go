package store

import (
	"fmt"
	"os"
)

// FileKind says what a file baton reads holds, for CheckFileMode.
type FileKind int

const (
	// Secret files (keys, tokens, passwords) must not be writable by
	// group or others; readable by others is a warning.
	Secret FileKind = iota
	// Program files (hooks) must not be writable by group or others.
	Program
)

// CheckFileMode checks the permissions of a file baton reads: it refuses
// one that group or others may write (they could replace a key or a hook
// that runs as root), and warns (warning non-empty) when others may read
// a secret. Both name the path. Symlinks are followed, as reading does.
func CheckFileMode(path string, kind FileKind) (warning string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("checking %s: %w", path, err)
	}
	mode := fi.Mode().Perm()
	if mode&0o022 != 0 {
		return "", fmt.Errorf("%s is writable by group or others (mode %#o): chmod go-w %s", path, mode, path)
	}
	if kind == Secret && mode&0o004 != 0 {
		return fmt.Sprintf("%s is readable by others (mode %#o): chmod o-r %s", path, mode, path), nil
	}
	return "", nil
}

// ReadSecret reads a secret file after CheckFileMode; warn receives the
// warning, if any.
func ReadSecret(path string, warn func(msg string)) ([]byte, error) {
	w, err := CheckFileMode(path, Secret)
	if err != nil {
		return nil, err
	}
	if w != "" && warn != nil {
		warn(w)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}
