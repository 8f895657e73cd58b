package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data so that a reader, or the file
// system after a crash, sees either the old content or the new one, never
// a mix: it writes a temporary file in the same directory, syncs it, sets
// perm, renames it over path and syncs the directory. On error the old
// file is left as it was and the temporary file is removed.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return osOps().writeFileAtomic(path, data, perm)
}

// fileOps are the file-system calls of an atomic write; tests replace them
// to make a step fail.
type fileOps struct {
	createTemp func(dir, pattern string) (*os.File, error)
	write      func(f *os.File, data []byte) (int, error)
	sync       func(f *os.File) error
	rename     func(oldpath, newpath string) error
	syncDir    func(dir string) error
}

func osOps() fileOps {
	return fileOps{
		createTemp: os.CreateTemp,
		write:      func(f *os.File, data []byte) (int, error) { return f.Write(data) },
		sync:       func(f *os.File) error { return f.Sync() },
		rename:     os.Rename,
		syncDir:    syncDir,
	}
}

func (o fileOps) writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := o.createTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := o.write(f, data)
	if err == nil && n < len(data) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("writing temporary file %s for %s: %w", tmp, path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("setting mode %v on temporary file %s for %s: %w", perm, tmp, path, err)
	}
	if err := o.sync(f); err != nil {
		return fmt.Errorf("syncing temporary file %s for %s: %w", tmp, path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing temporary file %s for %s: %w", tmp, path, err)
	}
	if err := o.rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, path, err)
	}
	renamed = true
	// The new content is in place; a failed directory sync only weakens
	// durability, but it is still reported.
	if err := o.syncDir(dir); err != nil {
		return fmt.Errorf("syncing directory %s after replacing %s: %w", dir, path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	return errors.Join(serr, cerr)
}
