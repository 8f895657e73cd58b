// Package routes is the "routes" action: on takeover it points cloud route
// tables (AWS VPC route tables, Azure UDRs) at this node, verifies every
// change by reading it back, and, while active, keeps a persisted capture of
// the routes that point here so that the preferred node gives back exactly
// the routes it owned and never touches one it did not.
//
// The cloud specifics live behind Backend; NewAWS and NewAzure build the
// real ones over the SDK interfaces of internal/provider/aws and
// internal/provider/azure.
package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/retry"
)

// Route is one route of one table as the cloud reports it.
type Route struct {
	Table       string // route table ID (AWS rtb-…, Azure resource ID)
	Name        string // Azure route name; empty on AWS
	Destination string // CIDR prefix
	Target      string // AWS: eni-…, i-…, igw-…; Azure: next-hop IP, or the next-hop type when it has no IP
	Alias       string // another name of the same target (AWS: the instance behind an ENI target)
}

// Owner says whom a route points at.
type Owner int

const (
	OwnerOther Owner = iota // neither node: never taken unless listed or captured
	OwnerLocal              // this node
	OwnerPeer               // the peer
)

// Backend is one cloud's route tables.
type Backend interface {
	// Cloud is "aws" or "azure"; the capture file records it.
	Cloud() string
	// Tables lists the IDs of the route tables in scope.
	Tables(ctx context.Context) ([]string, error)
	// Routes reads the routes of one table.
	Routes(ctx context.Context, table string) ([]Route, error)
	// Point makes route r (Table, Destination, Name) use this node as its
	// next hop; exists says whether to replace or create it. It returns
	// when the cloud has accepted the change (long-running operations
	// polled to completion).
	Point(ctx context.Context, r Route, exists bool) error
	// Owner tells whom r points at.
	Owner(r Route) Owner
	// Classify decides which errors are retried, and for how long to wait.
	Classify(err error) (retry bool, after time.Duration)
}

// Selection is what the configuration asks the action to own.
type Selection struct {
	Destinations  []string // always pointed here
	PeerTargets   bool     // every route pointing at the peer is pointed here
	CreateMissing bool     // create listed destinations missing from a table
}

// RouteStatus is the outcome of the last change of one route.
type RouteStatus struct {
	Table       string
	Destination string
	From        string        // target before the change
	Started     time.Time     // start of the Activate or Verify that changed it
	Duration    time.Duration // from Started until the read-back confirmed it
	Attempts    int           // cloud calls made for this route
	Repair      bool          // changed by Verify (drift), not by Activate
	Err         error         // nil when the route points here
}

// Options are the dependencies of an Action.
type Options struct {
	Logger  *slog.Logger
	Clock   clock.Clock
	Backoff retry.Backoff // Clock and Logger default to the ones above
	// Observe, when set, is called after every route change (metrics).
	Observe func(RouteStatus)
	// Concurrency bounds the cloud calls in flight at once, default 16;
	// it shrinks while the cloud throttles (see limiter).
	Concurrency int
	// StateDir holds the capture file.
	StateDir string
	// PerRoute writes route by route even where the backend writes whole
	// tables (the benchmark compares both).
	PerRoute bool
}

// Action points routes at this node. It implements action.Action.
type Action struct {
	b     Backend
	sel   Selection
	dests map[string]bool
	opts  Options
	log   *slog.Logger
	mu    sync.Mutex // guards owned, status, view, token and file writes
	owned map[string]Owned
	// token is the fencing token of the last Activate: the repairs of
	// Verify carry it, as the takeover's writes do.
	token  uint64
	status map[string]RouteStatus
	// view is the last read of each table; a takeover plans from it and
	// changes the routes it knows of without reading first. Deactivate
	// drops it: once the peer is active the tables are the peer's.
	view map[string][]Route
}

var _ action.Action = (*Action)(nil)

// NewWithBackend returns an action over b. It loads the capture from
// opts.StateDir; a damaged capture is an error, never silently dropped.
func NewWithBackend(b Backend, sel Selection, opts Options) (*Action, error) {
	if opts.StateDir == "" {
		return nil, errors.New("creating routes action: state dir is empty")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Backoff.Clock == nil {
		opts.Backoff.Clock = opts.Clock
	}
	if opts.Backoff.Logger == nil {
		opts.Backoff.Logger = opts.Logger
	}
	if opts.Backoff.Component == "" {
		opts.Backoff.Component = "routes"
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	owned, err := loadCapture(opts.StateDir, b.Cloud())
	if err != nil {
		return nil, fmt.Errorf("creating routes action: %w", err)
	}
	dests := map[string]bool{}
	for _, d := range sel.Destinations {
		dests[canonical(d)] = true
	}
	return &Action{
		b: b, sel: sel, dests: dests, opts: opts,
		log:    opts.Logger.With("component", "routes"),
		owned:  owned,
		status: map[string]RouteStatus{},
		view:   map[string][]Route{},
	}, nil
}

// Name implements action.Action.
func (a *Action) Name() string { return "routes" }

// Activate points every owned route of every table in scope at this node:
// the listed destinations, the routes captured earlier (give-back), and,
// with peer targets, every route that points at the peer. Tables change
// concurrently; one failing table does not stop the others, and the error
// names every table that did not converge.
//
// With a witness (t.Token > 0) the writes are fenced: a table last written
// under a higher token belongs to a newer active node, and this node is
// refused (a fault that demotes it) instead of overwriting it.
func (a *Action) Activate(ctx context.Context, t action.Takeover) error {
	a.mu.Lock()
	a.token = t.Token
	a.mu.Unlock()
	return a.fenced(ctx, t.Token, func() error {
		return a.sync(ctx, false, "term", t.Term, "reason", t.Reason)
	})
}

// Deactivate changes no route: the node taking over pulls the routes, and
// the capture stays so this node can take its routes back later. It
// forgets the last read of the tables, which the peer now owns.
func (a *Action) Deactivate(ctx context.Context, t action.Takeover) error {
	a.mu.Lock()
	a.view = map[string][]Route{}
	a.mu.Unlock()
	return nil
}

// Verify, when active, repairs owned routes that point elsewhere (logging
// each repair) and refreshes the capture. A standby node does not touch
// routes: the active one owns them. Repairs are fenced by the token of the
// last Activate: a node that still believes it is active after a freeze
// gets a fault instead of repairing the newer active's routes back.
func (a *Action) Verify(ctx context.Context, active bool) error {
	if !active {
		return nil
	}
	a.mu.Lock()
	token := a.token
	a.mu.Unlock()
	return a.fenced(ctx, token, func() error { return a.sync(ctx, true) })
}

// Status returns the last change of every route, sorted by table and
// destination.
func (a *Action) Status() []RouteStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]RouteStatus, 0, len(a.status))
	for _, s := range a.status {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y RouteStatus) int {
		if c := cmpString(x.Table, y.Table); c != 0 {
			return c
		}
		return cmpString(x.Destination, y.Destination)
	})
	return out
}

// Owned returns the routes this node owns (its capture), sorted.
func (a *Action) Owned() []Owned {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Owned, 0, len(a.owned))
	for _, o := range a.owned {
		out = append(out, o)
	}
	slices.SortFunc(out, func(x, y Owned) int { return cmpString(x.key(), y.key()) })
	return out
}

// Check reads every table in scope once, so that a missing table or a
// missing read permission is reported before the first takeover.
func (a *Action) Check(ctx context.Context) error {
	tables, err := a.tables(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, tb := range tables {
		if _, err := a.read(ctx, tb); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func canonical(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return cidr
	}
	return p.Masked().String()
}

func (a *Action) tables(ctx context.Context) ([]string, error) {
	var tables []string
	_, err := a.opts.Backoff.Do(ctx, "listing route tables", a.b.Classify, func(ctx context.Context) error {
		var err error
		tables, err = a.b.Tables(ctx)
		return err
	})
	return tables, err
}

func (a *Action) read(ctx context.Context, table string) ([]Route, error) {
	var rs []Route
	_, err := a.opts.Backoff.Do(ctx, "reading route table "+table, a.b.Classify, func(ctx context.Context) error {
		var err error
		rs, err = a.b.Routes(ctx, table)
		return err
	})
	return rs, err
}

// plan returns the routes of one table to point here, and the listed
// destinations missing from it.
func (a *Action) plan(table string, rs []Route) (change []Route, missing []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	present := map[string]bool{}
	for _, r := range rs {
		d := canonical(r.Destination)
		present[d] = true
		owner := a.b.Owner(r)
		if owner == OwnerLocal {
			continue
		}
		_, captured := a.owned[table+"|"+d]
		if a.dests[d] || captured || (a.sel.PeerTargets && owner == OwnerPeer) {
			change = append(change, r)
		}
	}
	for _, d := range a.sel.Destinations {
		if !present[canonical(d)] {
			missing = append(missing, canonical(d))
		}
	}
	return change, missing
}

// own adds routes to the capture and persists it before they change, so a
// restart in the middle of a takeover still knows they are ours.
func (a *Action) own(rs []Route, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	changed := false
	for _, r := range rs {
		o := Owned{Table: r.Table, Destination: canonical(r.Destination), Name: r.Name, Since: now}
		if _, ok := a.owned[o.key()]; !ok {
			a.owned[o.key()] = o
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return saveCapture(a.opts.StateDir, a.b.Cloud(), a.owned)
}

// recapture makes the capture of one table the routes that point here now,
// plus owned routes that still exist (a failed repair stays owned). Routes
// deleted from the table leave the capture.
func (a *Action) recapture(table string, rs []Route, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	changed := false
	present := map[string]Route{}
	for _, r := range rs {
		present[canonical(r.Destination)] = r
	}
	for k, o := range a.owned {
		if o.Table != table {
			continue
		}
		if _, ok := present[o.Destination]; !ok {
			delete(a.owned, k)
			changed = true
		}
	}
	for d, r := range present {
		if a.b.Owner(r) != OwnerLocal {
			continue
		}
		o := Owned{Table: table, Destination: d, Name: r.Name, Since: now}
		if _, ok := a.owned[o.key()]; !ok {
			a.owned[o.key()] = o
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return saveCapture(a.opts.StateDir, a.b.Cloud(), a.owned)
}

func (a *Action) record(s RouteStatus) {
	a.mu.Lock()
	a.status[s.Table+"|"+s.Destination] = s
	a.mu.Unlock()
	if a.opts.Observe != nil {
		a.opts.Observe(s)
	}
}

// pause waits between read-back rounds.
func (a *Action) pause(ctx context.Context, round int) error {
	b := a.opts.Backoff.WithDefaults()
	d := b.Wait(round-1, 0)
	if d <= 0 {
		return ctx.Err()
	}
	t := b.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Action) retryable(err error) bool {
	ok, _ := a.b.Classify(err)
	return ok
}
