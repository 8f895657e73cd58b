package conntrack

import (
	"context"
	"errors"
	"sync"
)

// Fake is an in-memory table with the methods of Conn and watchers that
// see its changes, for tests of callers. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	m       map[Key]Entry
	subs    map[*FakeWatcher]bool
	applies int
	// FailApply, when set, is returned by Apply.
	FailApply error
	// BeforeApply, when set, runs at the start of every Apply (outside the
	// table's lock) with the number of ops: a test can hold a write there.
	BeforeApply func(n int)
}

// NewFake returns an empty table.
func NewFake() *Fake { return &Fake{m: map[Key]Entry{}, subs: map[*FakeWatcher]bool{}} }

// Dump returns every entry.
func (f *Fake) Dump(ctx context.Context) ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Entry, 0, len(f.m))
	for _, e := range f.m {
		out = append(out, e)
	}
	return out, nil
}

// Get returns the entry with key k.
func (f *Fake) Get(k Key) (Entry, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[k]
	return e, ok, nil
}

// Len is the number of entries.
func (f *Fake) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// Applies counts Apply calls.
func (f *Fake) Applies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}

// Apply applies ops with Conn's converging semantics.
func (f *Fake) Apply(ctx context.Context, ops []Op) (ApplyStats, error) {
	if f.BeforeApply != nil {
		f.BeforeApply(len(ops))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	if f.FailApply != nil {
		return ApplyStats{}, f.FailApply
	}
	var st ApplyStats
	for _, op := range ops {
		k := op.Entry.Key()
		_, exists := f.m[k]
		switch op.Kind {
		case OpDelete:
			if !exists {
				st.Missing++
				continue
			}
			st.Deleted++
			f.setLocked(k, nil)
		case OpCreate:
			if exists {
				st.Replaced++
				f.setLocked(k, nil)
			} else {
				st.Created++
			}
			e := op.Entry
			f.setLocked(k, &e)
		case OpUpdate:
			if exists {
				st.Updated++
			} else {
				st.Created++
			}
			e := op.Entry
			f.setLocked(k, &e)
		}
	}
	return st, nil
}

// Set creates or changes an entry as traffic would, with its event.
func (f *Fake) Set(e Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(e.Key(), &e)
}

// Remove deletes an entry as its expiry would, with its event.
func (f *Fake) Remove(k Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[k]; ok {
		f.setLocked(k, nil)
	}
}

func (f *Fake) setLocked(k Key, e *Entry) {
	old, exists := f.m[k]
	var ev Event
	switch {
	case e == nil:
		delete(f.m, k)
		ev = Event{Type: EventDestroy, Entry: old}
	case exists:
		f.m[k] = *e
		ev = Event{Type: EventUpdate, Entry: *e}
	default:
		f.m[k] = *e
		ev = Event{Type: EventNew, Entry: *e}
	}
	for w := range f.subs {
		select {
		case w.ch <- ev:
		default:
			w.overrun = true
		}
	}
}

// Watch returns a watcher of the table's events with room for buf events
// before it overruns.
func (f *Fake) Watch(buf int) *FakeWatcher {
	w := &FakeWatcher{f: f, ch: make(chan Event, buf), kick: make(chan struct{}, 1)}
	f.mu.Lock()
	f.subs[w] = true
	f.mu.Unlock()
	return w
}

// FakeWatcher has the methods of Watcher.
type FakeWatcher struct {
	f       *Fake
	ch      chan Event
	kick    chan struct{}
	overrun bool // guarded by f.mu
}

// Overrun makes the watcher report lost events once.
func (w *FakeWatcher) Overrun() {
	w.f.mu.Lock()
	w.overrun = true
	w.f.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers events until ctx ends.
func (w *FakeWatcher) Run(ctx context.Context, handle func(Event), overrun func()) error {
	for {
		w.f.mu.Lock()
		o := w.overrun
		w.overrun = false
		w.f.mu.Unlock()
		if o {
			overrun()
		}
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.ch:
			handle(ev)
		case <-w.kick:
		}
	}
}

// Close unsubscribes the watcher.
func (w *FakeWatcher) Close() error {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	if !w.f.subs[w] {
		return errors.New("watcher already closed")
	}
	delete(w.f.subs, w)
	return nil
}
