package pairbench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/batonha/baton/internal/lab"
)

// Env is one daemon's run in one lab: the pair, a directory for configs
// and logs, the heartbeat / advert interval and baton's misses.
type Env struct {
	Pair     *lab.Pair
	Dir      string
	Interval time.Duration
	Misses   int
	// Preempt makes baton's preferred node take the role back (set before
	// NewBaton; keepalived's BACKUP/BACKUP configuration always preempts).
	Preempt bool
}

// NewEnv builds a pair in fresh namespaces and a directory named after
// dirPattern (as os.MkdirTemp takes it).
func NewEnv(interval time.Duration, misses int, dirPattern string) (*Env, error) {
	p, err := lab.NewPair(lab.RandomPrefix(), nil)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("creating bench directory: %w", err), p.Close())
	}
	return &Env{Pair: p, Dir: dir, Interval: interval, Misses: misses}, nil
}

// Close tears the pair down and, unless keep, removes the directory.
func (e *Env) Close(keep bool) error {
	err := e.Pair.Close()
	if !keep {
		err = errors.Join(err, os.RemoveAll(e.Dir))
	}
	return err
}

// NodeDir is appliance i's directory.
func (e *Env) NodeDir(i int) string { return filepath.Join(e.Dir, lab.ApplianceName(i)) }

// SetLinks sets every link of appliance i up or down.
func (e *Env) SetLinks(i int, up bool) error {
	h := e.Pair.Appliances()[i]
	links, err := h.Links()
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := h.SetLink(l, up); err != nil {
			return err
		}
	}
	return nil
}

// VIPHolder returns the appliance holding VIPAddr, or -1 and why there is
// not exactly one.
func (e *Env) VIPHolder() (int, string) {
	holder := -1
	for i, h := range e.Pair.Appliances() {
		has, err := h.HasAddr(VIPAddr)
		if err != nil {
			return -1, err.Error()
		}
		if has {
			if holder >= 0 {
				return -1, "both nodes hold the VIP"
			}
			holder = i
		}
	}
	if holder < 0 {
		return -1, "no node holds the VIP"
	}
	return holder, ""
}

// Fail fails appliance i by v: Kill calls kill, LinkDown sets its links
// down.
func (e *Env) Fail(i int, v Variant, kill func() error) error {
	switch v {
	case Kill:
		return kill()
	case LinkDown:
		return e.SetLinks(i, false)
	}
	return fmt.Errorf("unknown variant %q", v)
}

// Restore undoes Fail: after Kill it waits up to 5s for the daemon's
// process p to exit and calls restart; after LinkDown it sets the links up.
func (e *Env) Restore(i int, v Variant, daemon string, p *lab.Proc, restart func() error) error {
	switch v {
	case Kill:
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			return fmt.Errorf("%s on %s did not die", daemon, lab.ApplianceName(i))
		}
		return restart()
	case LinkDown:
		return e.SetLinks(i, true)
	}
	return fmt.Errorf("unknown variant %q", v)
}
