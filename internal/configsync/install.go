package configsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Runner runs a validate or apply command.
type Runner interface {
	Run(ctx context.Context, command string) (output []byte, err error)
}

// ShellRunner runs commands with /bin/sh -c.
type ShellRunner struct{}

// Run runs command and returns its combined output.
func (ShellRunner) Run(ctx context.Context, command string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return out, err
}

// ErrRefused marks a path, a file or a message that is not accepted.
var ErrRefused = errors.New("refused")

// ErrApplyFailed marks a file whose apply command failed; the previous
// file was restored.
var ErrApplyFailed = errors.New("apply failed")

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runCmd runs one of a set's commands with {file} replaced.
func (e *Engine) runCmd(ctx context.Context, s *set, what, command, file string) error {
	if command == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	line := strings.ReplaceAll(command, "{file}", shellQuote(file))
	out, err := e.run.Run(ctx, line)
	if err != nil {
		return fmt.Errorf("%s command %q: %w: %s", what, line, err, truncate(strings.TrimSpace(string(out)), 400))
	}
	return nil
}

// internalName reports whether a file name is one baton itself makes.
func internalName(name string) bool {
	return strings.Contains(name, ".baton-tmp-") || strings.Contains(name, ".baton-conflict-")
}

// allowed reports whether rel (slash-separated, relative) belongs to set s.
func (s *set) allowed(rel string) error {
	if rel == "" || path.IsAbs(rel) || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") || strings.Contains(rel, "\x00") {
		return fmt.Errorf("%w: path %q is not a clean path inside set %s", ErrRefused, rel, s.cfg.Name)
	}
	if internalName(path.Base(rel)) {
		return fmt.Errorf("%w: path %q is a baton temporary or conflict file", ErrRefused, rel)
	}
	native := filepath.FromSlash(rel)
	for _, p := range s.cfg.Exclude {
		if ok, _ := filepath.Match(p, native); ok {
			return fmt.Errorf("%w: path %q is excluded from set %s (%s)", ErrRefused, rel, s.cfg.Name, p)
		}
	}
	for _, p := range s.cfg.Files {
		if ok, _ := filepath.Match(p, native); ok {
			return nil
		}
	}
	return fmt.Errorf("%w: path %q matches none of set %s's files patterns", ErrRefused, rel, s.cfg.Name)
}

// within reports whether p is root or inside it.
func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// destination returns the absolute path to write rel of set s to, after
// checking that neither it nor a directory on the way is a symlink that
// leads out of the set's dir. Missing directories are created.
func (s *set) destination(rel string) (string, error) {
	if err := s.allowed(rel); err != nil {
		return "", err
	}
	dir := s.root
	parts := strings.Split(rel, "/")
	for _, c := range parts[:len(parts)-1] {
		next := filepath.Join(dir, c)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(next, 0o755); err != nil {
				return "", fmt.Errorf("creating directory %s: %w", next, err)
			}
		case err != nil:
			return "", fmt.Errorf("checking %s: %w", next, err)
		case fi.Mode()&os.ModeSymlink != 0:
			real, err := filepath.EvalSymlinks(next)
			if err != nil {
				return "", fmt.Errorf("resolving %s: %w", next, err)
			}
			if !within(s.root, real) {
				return "", fmt.Errorf("%w: %s is a symlink to %s, outside the set's dir %s", ErrRefused, next, real, s.root)
			}
			next = real
		case !fi.IsDir():
			return "", fmt.Errorf("%w: %s is not a directory", ErrRefused, next)
		}
		dir = next
	}
	dest := filepath.Join(dir, parts[len(parts)-1])
	fi, err := os.Lstat(dest)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("checking %s: %w", dest, err)
	case fi.Mode()&os.ModeSymlink != 0:
		target, _ := os.Readlink(dest)
		return "", fmt.Errorf("%w: %s is a symlink (to %s); baton does not write through symlinks", ErrRefused, dest, target)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%w: %s is not a regular file", ErrRefused, dest)
	}
	return dest, nil
}

// staged is a validated temporary file waiting to be put in place.
type staged struct {
	tmp, dest string
}

// stage writes data beside dest with the mode and owner attrsFor picks,
// syncs it and runs the set's validate command on it.
func (e *Engine) stage(ctx context.Context, s *set, dest string, data []byte, m Meta) (*staged, error) {
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".baton-tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating temporary file for %s: %w", dest, err)
	}
	tmp := f.Name()
	fail := func(err error) (*staged, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		return fail(fmt.Errorf("writing temporary file %s: %w", tmp, err))
	}
	tfi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("checking temporary file %s: %w", tmp, err))
	}
	var existing os.FileInfo
	if fi, err := os.Lstat(dest); err == nil {
		existing = fi
	}
	if err := e.applyAttrs(tmp, tfi, s.attrsFor(existing, m), f.Chmod, f.Chown); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("syncing temporary file %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("closing temporary file %s: %w", tmp, err))
	}
	if err := e.runCmd(ctx, s, "validate", s.cfg.Validate, tmp); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("%w: validation failed: %w", ErrRefused, err)
	}
	return &staged{tmp: tmp, dest: dest}, nil
}

func (st *staged) discard() { os.Remove(st.tmp) }

// commit puts a staged file in place (keeping the previous one as a
// backup) and runs apply; if apply fails it restores the previous file,
// applies again and returns an error.
func (e *Engine) commit(ctx context.Context, s *set, rel string, st *staged) error {
	old, oldInfo, hadOld := readOld(st.dest)
	if hadOld {
		e.backup(s, rel, old)
	}
	if err := os.Rename(st.tmp, st.dest); err != nil {
		st.discard()
		return fmt.Errorf("renaming %s to %s: %w", st.tmp, st.dest, err)
	}
	_ = syncDir(filepath.Dir(st.dest))
	return e.applyOrRestore(ctx, s, st.dest, old, oldInfo, hadOld)
}

// remove deletes a file (keeping a backup) and runs apply.
func (e *Engine) remove(ctx context.Context, s *set, rel, dest string) error {
	old, oldInfo, hadOld := readOld(dest)
	if !hadOld {
		return nil
	}
	e.backup(s, rel, old)
	if err := os.Remove(dest); err != nil {
		return fmt.Errorf("removing %s: %w", dest, err)
	}
	_ = syncDir(filepath.Dir(dest))
	return e.applyOrRestore(ctx, s, dest, old, oldInfo, true)
}

func (e *Engine) applyOrRestore(ctx context.Context, s *set, dest string, old []byte, oldInfo os.FileInfo, hadOld bool) error {
	aerr := e.runCmd(ctx, s, "apply", s.cfg.Apply, dest)
	if aerr == nil {
		return nil
	}
	var rerr error
	if hadOld {
		rerr = writeAtomic(dest, old, oldInfo)
	} else {
		rerr = os.Remove(dest)
	}
	if rerr != nil {
		return fmt.Errorf("%w: %w; restoring the previous %s also failed: %w", ErrApplyFailed, aerr, dest, rerr)
	}
	if err := e.runCmd(ctx, s, "apply", s.cfg.Apply, dest); err != nil {
		return fmt.Errorf("%w: %w; previous file restored but applying it failed too: %w", ErrApplyFailed, aerr, err)
	}
	return fmt.Errorf("%w: %w; previous file restored and applied", ErrApplyFailed, aerr)
}

func readOld(p string) ([]byte, os.FileInfo, bool) {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, nil, false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, false
	}
	return b, fi, true
}

// writeAtomic replaces p with data, keeping fi's mode and owner.
func writeAtomic(p string, data []byte, fi os.FileInfo) error {
	m := metaOf(fi)
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".baton-tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", p, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	_ = f.Chmod(os.FileMode(m.Mode))
	_ = f.Chown(m.UID, m.GID)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("renaming %s to %s: %w", tmp, p, err)
	}
	return syncDir(filepath.Dir(p))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	return errors.Join(serr, d.Close())
}

// backup keeps old as the newest backup of rel and prunes the oldest.
func (e *Engine) backup(s *set, rel string, old []byte) {
	if e.backups <= 0 {
		return
	}
	dir := filepath.Join(e.stateDir, "backup", s.cfg.Name, filepath.FromSlash(rel))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.log.Warn("creating backup directory", "dir", dir, "err", err)
		return
	}
	name := filepath.Join(dir, strconv.FormatInt(e.clk.Now().UnixNano(), 10))
	if err := os.WriteFile(name, old, 0o600); err != nil {
		e.log.Warn("writing backup", "file", name, "err", err)
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	names := make([]string, 0, len(ents))
	for _, d := range ents {
		names = append(names, d.Name())
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := strconv.ParseInt(names[i], 10, 64)
		b, _ := strconv.ParseInt(names[j], 10, 64)
		return a < b
	})
	for len(names) > e.backups {
		os.Remove(filepath.Join(dir, names[0]))
		names = names[1:]
	}
}

// writeConflictCopy keeps content beside the file as
// <file>.baton-conflict-<node>-<time>, readable by root only (the
// losing version may come from the peer with any mode), and returns its
// path.
func (e *Engine) writeConflictCopy(dest, node string, content []byte) (string, error) {
	stamp := e.clk.Now().UTC().Format("20060102T150405.000Z")
	base := dest + ".baton-conflict-" + node + "-" + stamp
	name := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("creating conflict copy %s: %w", name, err)
	}
	_, werr := f.Write(content)
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		return "", fmt.Errorf("writing conflict copy %s: %w", name, err)
	}
	return name, nil
}
