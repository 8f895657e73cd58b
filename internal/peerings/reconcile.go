// Package peerings keeps a route server's BGP peerings in step with a
// scale set: desired is the set's healthy instances' private IPs, actual is
// the peerings baton manages (by name prefix or tag; it never touches one
// it does not manage). Changes go one at a time per route server, because
// concurrent writes fail with 409; each waits for its provisioning state
// with backoff and a deadline, busy (409) and throttled (429) answers are
// retried, and a round is skipped while any peering is changing.
//
// Backends: Azure Route Server (armnetwork virtual hub BGP connections,
// scale-set NICs) and AWS VPC Route Server (ec2 route-server peers on each
// endpoint, Auto Scaling group instances).
package peerings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/retry"
)

// Provisioning states, as Azure spells them; AWS states are mapped onto
// them by its backend.
const (
	StateSucceeded = "Succeeded"
	StateUpdating  = "Updating"
	StateCreating  = "Creating"
	StateDeleting  = "Deleting"
	StateFailed    = "Failed"
)

// ErrBusy marks an answer worth retrying: another operation in progress
// (409) or throttling (429).
var ErrBusy = errors.New("route server busy")

// ErrNotFound is returned by RouteServer.Get for a peering that does not
// exist (any more).
var ErrNotFound = errors.New("peering not found")

// Peering is one BGP peering of a route server.
type Peering struct {
	Name  string `json:"name"`
	IP    string `json:"ip"`
	ASN   uint32 `json:"asn"`
	State string `json:"state"` // provisioning state (see the State constants)
	// SessionUp reports whether the route server has the BGP session
	// established (Azure connectionState Connected, AWS BGP status up).
	SessionUp bool `json:"session_up"`
	// ID is the backend's own identifier (AWS rsp-...), if any.
	ID string `json:"id,omitempty"`
}

// Instance is one member of the scale set.
type Instance struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
}

// RouteServer is one route server (Azure) or route-server endpoint (AWS):
// the calls the reconciler makes.
type RouteServer interface {
	// ID names it in logs and reports.
	ID() string
	// MaxPeers is its peer limit, 0 for none.
	MaxPeers() int
	// Managed reports whether baton owns p.
	Managed(p Peering) bool
	List(ctx context.Context) ([]Peering, error)
	// Get returns the peering called name or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) (Peering, error)
	// Create starts creating p; it returns once the request is accepted.
	Create(ctx context.Context, p Peering) error
	// Delete starts deleting p; it returns once the request is accepted.
	Delete(ctx context.Context, p Peering) error
}

// Inventory lists the scale set's healthy instances.
type Inventory interface {
	Instances(ctx context.Context) ([]Instance, error)
}

// Plan is what one round decided for one route server.
type Plan struct {
	RouteServer string     `json:"route_server"`
	Skipped     string     `json:"skipped,omitempty"` // why nothing was done
	Create      []Peering  `json:"create,omitempty"`
	Delete      []Peering  `json:"delete,omitempty"`
	Draining    []Peering  `json:"draining,omitempty"` // stale, session still up, waiting for the node to withdraw
	Unfit       []Instance `json:"unfit,omitempty"`    // beyond the route server's peer limit
	Done        []string   `json:"done,omitempty"`     // operations carried out
	Errors      []string   `json:"errors,omitempty"`
}

// Options configure a Reconciler.
type Options struct {
	NamePrefix       string
	PeerASN          uint32
	OperationTimeout time.Duration
	DrainTimeout     time.Duration
	DryRun           bool
	Clock            clock.Clock
	Logger           *slog.Logger
}

// Reconciler converges route servers on an inventory.
type Reconciler struct {
	inv     Inventory
	servers []RouteServer
	opt     Options
	log     *slog.Logger

	mu         sync.Mutex
	staleSince map[string]time.Time // route server + peering name → first seen stale
	last       []Plan
	lastRound  time.Time
}

// New returns a reconciler of servers against inv.
func New(inv Inventory, servers []RouteServer, opt Options) *Reconciler {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.OperationTimeout == 0 {
		opt.OperationTimeout = DefaultOperationTimeout
	}
	return &Reconciler{inv: inv, servers: servers, opt: opt, log: opt.Logger.With("component", "peerings"),
		staleSince: map[string]time.Time{}}
}

// PeeringName is the name baton gives the peering of ip.
func PeeringName(prefix, ip string) string {
	return prefix + strings.NewReplacer(".", "-", ":", "-").Replace(ip)
}

// Round runs one reconciliation: the inventory once, then each route
// server in its own goroutine (one operation at a time on each).
func (r *Reconciler) Round(ctx context.Context) ([]Plan, error) {
	insts, err := r.inv.Instances(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing scale-set instances: %w", err)
	}
	plans := make([]Plan, len(r.servers))
	var wg sync.WaitGroup
	for i, rs := range r.servers {
		wg.Go(func() { plans[i] = r.reconcile(ctx, rs, insts) })
	}
	wg.Wait()
	r.mu.Lock()
	r.last, r.lastRound = plans, r.opt.Clock.Now()
	r.mu.Unlock()
	var errs []error
	for _, p := range plans {
		for _, e := range p.Errors {
			errs = append(errs, fmt.Errorf("%s: %s", p.RouteServer, e))
		}
	}
	return plans, errors.Join(errs...)
}

// Last returns the plans of the last round and when it ran.
func (r *Reconciler) Last() ([]Plan, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.last), r.lastRound
}

func changing(state string) bool {
	switch state {
	case StateUpdating, StateCreating, StateDeleting:
		return true
	}
	return false
}

// reconcile plans and, unless dry-running, carries out one route server's
// changes: deletions first (they free slots), then creations.
func (r *Reconciler) reconcile(ctx context.Context, rs RouteServer, insts []Instance) Plan {
	plan := Plan{RouteServer: rs.ID()}
	log := r.log.With("route_server", rs.ID())
	peers, err := rs.List(ctx)
	if err != nil {
		plan.Errors = append(plan.Errors, fmt.Sprintf("listing peerings: %v", err))
		return plan
	}
	for _, p := range peers {
		if changing(p.State) {
			plan.Skipped = fmt.Sprintf("peering %s is %s: waiting for it before changing anything", p.Name, p.State)
			log.Info("skipping round", "reason", plan.Skipped)
			return plan
		}
	}
	want := map[string]Instance{}
	for _, in := range insts {
		if _, err := netip.ParseAddr(in.IP); err == nil {
			want[in.IP] = in
		}
	}
	have := map[string]bool{}
	now := r.opt.Clock.Now()
	seenStale := map[string]bool{}
	for _, p := range peers {
		if rs.Managed(p) && p.State == StateFailed {
			// A failed peering of ours is replaced: deleted, then created
			// again if still wanted.
			plan.Delete = append(plan.Delete, p)
			continue
		}
		have[p.IP] = true
		if !rs.Managed(p) {
			continue
		}
		if _, ok := want[p.IP]; ok {
			continue
		}
		// Stale. A node leaving the set withdraws its prefixes first (its
		// baton stops on shutdown): give it DrainTimeout while the route
		// server still has its session up.
		key := rs.ID() + "/" + p.Name
		seenStale[key] = true
		r.mu.Lock()
		since, ok := r.staleSince[key]
		if !ok {
			since = now
			r.staleSince[key] = now
		}
		r.mu.Unlock()
		if p.SessionUp && now.Sub(since) < r.opt.DrainTimeout {
			plan.Draining = append(plan.Draining, p)
			continue
		}
		plan.Delete = append(plan.Delete, p)
	}
	r.mu.Lock()
	for k := range r.staleSince {
		if strings.HasPrefix(k, rs.ID()+"/") && !seenStale[k] {
			delete(r.staleSince, k)
		}
	}
	r.mu.Unlock()
	var missing []Instance
	for ip, in := range want {
		if !have[ip] {
			missing = append(missing, in)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return ipLess(missing[i].IP, missing[j].IP) })
	sort.Slice(plan.Delete, func(i, j int) bool { return plan.Delete[i].Name < plan.Delete[j].Name })
	room := len(missing)
	if limit := rs.MaxPeers(); limit > 0 {
		room = max(0, limit-(len(peers)-len(plan.Delete)))
	}
	for i, in := range missing {
		if i >= room {
			plan.Unfit = append(plan.Unfit, in)
			continue
		}
		plan.Create = append(plan.Create, Peering{Name: PeeringName(r.opt.NamePrefix, in.IP), IP: in.IP, ASN: r.opt.PeerASN})
	}
	if len(plan.Unfit) > 0 {
		log.Warn("instances do not fit the route server's peer limit", "limit", rs.MaxPeers(), "unfit", len(plan.Unfit))
	}
	if r.opt.DryRun {
		return plan
	}
	for _, p := range plan.Delete {
		if err := r.apply(ctx, rs, "delete", p); err != nil {
			plan.Errors = append(plan.Errors, err.Error())
			return plan // one at a time: stop on the first failure
		}
		plan.Done = append(plan.Done, "deleted "+p.Name)
		log.Info("peering deleted", "peering", p.Name, "ip", p.IP)
	}
	for _, p := range plan.Create {
		if err := r.apply(ctx, rs, "create", p); err != nil {
			plan.Errors = append(plan.Errors, err.Error())
			return plan
		}
		plan.Done = append(plan.Done, "created "+p.Name)
		log.Info("peering created", "peering", p.Name, "ip", p.IP, "asn", p.ASN)
	}
	return plan
}

func ipLess(a, b string) bool {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX != nil || errY != nil {
		return a < b
	}
	return x.Less(y)
}

// pollWaits is the wait between busy retries and provisioning-state polls.
func pollWaits() retry.Doubling { return retry.Doubling{First: time.Second, Max: 30 * time.Second} }

// apply starts one operation, retrying busy answers, and waits for its
// final state; all within OperationTimeout.
func (r *Reconciler) apply(ctx context.Context, rs RouteServer, op string, p Peering) error {
	deadline := r.opt.Clock.Now().Add(r.opt.OperationTimeout)
	wait := pollWaits()
	for attempt := 1; ; attempt++ {
		var err error
		if op == "create" {
			err = rs.Create(ctx, p)
		} else {
			err = rs.Delete(ctx, p)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, ErrBusy) {
			return fmt.Errorf("%s peering %s (%s): %w", op, p.Name, p.IP, err)
		}
		r.log.Info("route server busy, retrying", "route_server", rs.ID(), "op", op, "peering", p.Name, "attempt", attempt, "err", err)
		if err := r.sleep(ctx, &wait, deadline); err != nil {
			return fmt.Errorf("%s peering %s (%s): still busy after %d attempts: %w", op, p.Name, p.IP, attempt, err)
		}
	}
	wait = pollWaits()
	for {
		got, err := rs.Get(ctx, p.Name)
		switch {
		case op == "delete" && errors.Is(err, ErrNotFound):
			return nil
		case err != nil && !errors.Is(err, ErrBusy):
			return fmt.Errorf("waiting for %s of peering %s: %w", op, p.Name, err)
		case err == nil && op == "create" && got.State == StateSucceeded:
			return nil
		case err == nil && got.State == StateFailed:
			return fmt.Errorf("%s peering %s (%s): provisioning state Failed", op, p.Name, p.IP)
		}
		if err := r.sleep(ctx, &wait, deadline); err != nil {
			return fmt.Errorf("waiting for %s of peering %s: %w", op, p.Name, err)
		}
	}
}

// errDeadline is returned when the operation deadline passes.
var errDeadline = errors.New("operation deadline passed")

// sleep waits the next of wait's waits, or fails if that would pass
// deadline or ctx ends.
func (r *Reconciler) sleep(ctx context.Context, wait *retry.Doubling, deadline time.Time) error {
	if r.opt.Clock.Now().Add(wait.Peek()).After(deadline) {
		return errDeadline
	}
	return clock.Sleep(ctx, r.opt.Clock, wait.Next())
}
