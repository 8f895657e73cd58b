package configsync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watcher reports changes in directories through inotify.
type watcher struct {
	f     *os.File
	fd    int
	mu    sync.Mutex
	byWD  map[int]string
	byDir map[string]int
}

const watchMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE |
	unix.IN_CREATE | unix.IN_ATTRIB | unix.IN_MODIFY | unix.IN_DELETE_SELF | unix.IN_ONLYDIR

func newWatcher() (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("creating inotify instance: %w", err)
	}
	return &watcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, byWD: map[int]string{}, byDir: map[string]int{}}, nil
}

// add watches dir (not recursively); watching it again is a no-op.
func (w *watcher) add(dir string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.byDir[dir]; ok {
		return nil
	}
	wd, err := unix.InotifyAddWatch(w.fd, dir, watchMask)
	if err != nil {
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	w.byWD[wd], w.byDir[dir] = dir, wd
	return nil
}

// run reads events until the watcher is closed; fn gets the paths that
// changed, or overflow when events were lost (or a directory appeared).
func (w *watcher) run(fn func(paths []string, rescan bool)) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading inotify events: %w", err)
		}
		var paths []string
		rescan := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				b := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				for i, c := range b {
					if c == 0 {
						b = b[:i]
						break
					}
				}
				name = string(b)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				rescan = true
				continue
			}
			w.mu.Lock()
			dir, ok := w.byWD[int(ev.Wd)]
			if ev.Mask&unix.IN_IGNORED != 0 && ok {
				delete(w.byWD, int(ev.Wd))
				delete(w.byDir, dir)
			}
			w.mu.Unlock()
			if !ok || name == "" || internalName(name) {
				continue
			}
			if ev.Mask&unix.IN_ISDIR != 0 {
				rescan = true // a new directory may hold files to watch
				continue
			}
			paths = append(paths, filepath.Join(dir, name))
		}
		if len(paths) > 0 || rescan {
			fn(paths, rescan)
		}
	}
}

func (w *watcher) close() error { return w.f.Close() }
