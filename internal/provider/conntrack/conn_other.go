//go:build !linux

package conntrack

import (
	"context"
	"errors"
)

var errNotLinux = errors.New("conntrack needs Linux")

// Conn is a ctnetlink request socket (Linux only).
type Conn struct{}

// Open fails off Linux.
func Open() (*Conn, error) { return nil, errNotLinux }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// Dump fails off Linux.
func (c *Conn) Dump(ctx context.Context) ([]Entry, error) { return nil, errNotLinux }

// Get fails off Linux.
func (c *Conn) Get(k Key) (Entry, bool, error) { return Entry{}, false, errNotLinux }

// Apply fails off Linux.
func (c *Conn) Apply(ctx context.Context, ops []Op) (ApplyStats, error) {
	return ApplyStats{}, errNotLinux
}

// Flush fails off Linux.
func (c *Conn) Flush() error { return errNotLinux }

// ErrOverrun says events were lost.
var ErrOverrun = errors.New("conntrack events lost (receive buffer overrun)")

// Watcher follows events (Linux only).
type Watcher struct{}

// NewWatcher fails off Linux.
func NewWatcher(rcvbuf, maxbuf int) (*Watcher, error) { return nil, errNotLinux }

// RcvBuf is 0.
func (w *Watcher) RcvBuf() int { return 0 }

// Close does nothing.
func (w *Watcher) Close() error { return nil }

// Run fails off Linux.
func (w *Watcher) Run(ctx context.Context, handle func(Event), overrun func()) error {
	return errNotLinux
}

// Pool is a set of request sockets (Linux only).
type Pool struct{ Conn }

// OpenPool fails off Linux.
func OpenPool(n int) (*Pool, error) { return nil, errNotLinux }
