package bgp

import (
	"context"
	"errors"
	"slices"
	"sync"

	speaker "github.com/batonha/baton/internal/provider/bgp"
)

// Fake is an Announcer that records what it was asked to announce.
type Fake struct {
	mu      sync.Mutex
	started bool
	stopped bool
	current []speaker.Route
	sets    int
	failSet int
	peers   []speaker.PeerStatus
}

// NewFake returns a fake speaker.
func NewFake() *Fake { return &Fake{} }

// Start implements Announcer.
func (f *Fake) Start(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = true
	return nil
}

// FailSets makes the next n Set calls fail.
func (f *Fake) FailSets(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failSet = n
}

// Set implements Announcer.
func (f *Fake) Set(_ context.Context, routes []speaker.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started || f.stopped {
		return errors.New("fake speaker not running")
	}
	f.sets++
	if f.failSet > 0 {
		f.failSet--
		return errors.New("fake speaker: injected failure")
	}
	f.current = slices.Clone(routes)
	return nil
}

// Announced implements Announcer.
func (f *Fake) Announced() []speaker.Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.current)
}

// SetPeers sets what Peers returns.
func (f *Fake) SetPeers(p []speaker.PeerStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = slices.Clone(p)
}

// Peers implements Announcer.
func (f *Fake) Peers(context.Context) []speaker.PeerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.peers)
}

// Stop implements Announcer.
func (f *Fake) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current = nil
	f.stopped = true
	return nil
}

// Stopped reports whether Stop was called.
func (f *Fake) Stopped() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped
}

// Sets counts Set calls.
func (f *Fake) Sets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sets
}
