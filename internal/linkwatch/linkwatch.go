// Package linkwatch reports the operational state of network interfaces:
// the current state of each watched interface first, then every change.
package linkwatch

import (
	"context"
	"sync"
)

// Update is an interface's operational state.
type Update struct {
	Name string
	Up   bool // administratively up and with carrier
}

// Source delivers the state of every interface once, then changes, to out
// until ctx ends. It may deliver an unchanged state again.
type Source interface {
	Watch(ctx context.Context, out chan<- Update) error
}

// Watch runs src and sends to out the state of the named interfaces: each
// one's first state, then only changes. It returns when ctx ends or src
// fails.
func Watch(ctx context.Context, src Source, names []string, out chan<- Update) error {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	raw := make(chan Update, 64)
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errc <- src.Watch(ctx, raw) }()
	last := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case u := <-raw:
			if !want[u.Name] {
				continue
			}
			if up, seen := last[u.Name]; seen && up == u.Up {
				continue
			}
			last[u.Name] = u.Up
			select {
			case out <- u:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// Fake is a Source whose interfaces a test sets.
type Fake struct {
	mu    sync.Mutex
	state map[string]bool
	subs  []chan<- Update
	ready chan struct{}
}

// NewFake returns a Fake whose named interfaces are up.
func NewFake(up ...string) *Fake {
	f := &Fake{state: map[string]bool{}, ready: make(chan struct{})}
	for _, n := range up {
		f.state[n] = true
	}
	return f
}

// Watch implements Source.
func (f *Fake) Watch(ctx context.Context, out chan<- Update) error {
	f.mu.Lock()
	var initial []Update
	for n, up := range f.state {
		initial = append(initial, Update{Name: n, Up: up})
	}
	f.subs = append(f.subs, out)
	if len(f.subs) == 1 {
		close(f.ready)
	}
	f.mu.Unlock()
	for _, u := range initial {
		select {
		case out <- u:
		case <-ctx.Done():
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

// Watching is closed once Watch has been called.
func (f *Fake) Watching() <-chan struct{} { return f.ready }

// Set changes an interface's state and tells every watcher.
func (f *Fake) Set(name string, up bool) {
	f.mu.Lock()
	f.state[name] = up
	subs := append([]chan<- Update(nil), f.subs...)
	f.mu.Unlock()
	for _, s := range subs {
		s <- Update{Name: name, Up: up}
	}
}
