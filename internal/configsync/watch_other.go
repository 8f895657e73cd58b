//go:build !linux

package configsync

import "errors"

// watcher is unavailable off Linux: the periodic comparison does the work.
type watcher struct{}

func newWatcher() (*watcher, error) { return nil, errors.New("file-system notifications need Linux") }

func (w *watcher) add(string) error                            { return nil }
func (w *watcher) run(func(paths []string, rescan bool)) error { return nil }
func (w *watcher) close() error                                { return nil }
