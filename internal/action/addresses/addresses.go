// Package addresses is the "addresses" action: on takeover it moves
// secondary private IPs and public IPs to this node — on AWS by
// reassigning private IPs to this node's ENI (AllowReassignment) and
// re-associating Elastic IPs (AllowReassociation); on Azure by moving
// ipConfigurations from the peer's NIC to this node's NIC and public IPs to
// this node's ipConfiguration. Every change is read back; Verify repairs
// drift while active.
package addresses

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/clock"
	provaws "github.com/batonha/baton/internal/provider/aws"
	"github.com/batonha/baton/internal/provider/azure"
	"github.com/batonha/baton/internal/retry"
)

// Options are the dependencies of an Action.
type Options struct {
	Logger  *slog.Logger
	Clock   clock.Clock
	Backoff retry.Backoff // shared retry policy (jittered, Retry-After aware)
	// Observe, when set, is called after every address change (metrics).
	Observe func(Change)
}

// Change records one address moved to this node.
type Change struct {
	Address  string // IP or allocation ID
	Kind     string // "private" or "public"
	Started  time.Time
	Duration time.Duration
	Err      error
}

// mover is one cloud's address operations.
type mover interface {
	// ensure moves every configured address that is not on this node and
	// returns what it moved; it reads back before returning.
	ensure(ctx context.Context, repair bool) ([]Change, error)
	check(ctx context.Context) error
	// register is the fencing register of the resources the moves write.
	register() routes.Register
}

// Action moves addresses. It implements action.Action.
type Action struct {
	m      mover
	opts   Options
	log    *slog.Logger
	mu     sync.Mutex
	status []Change
	// token is the fencing token of the last Activate; Verify's repairs
	// carry it.
	token uint64
}

var _ action.Action = (*Action)(nil)

func newAction(m mover, opts Options) *Action {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	return &Action{m: m, opts: opts, log: opts.Logger.With("component", "addresses")}
}

func fillBackoff(opts Options, attempts int) Options {
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
		opts.Backoff.Component = "addresses"
	}
	if opts.Backoff.Attempts == 0 {
		opts.Backoff.Attempts = attempts
	}
	return opts
}

// New builds the action for the configured cloud with the standard
// credential chains.
func New(ctx context.Context, cfg Config, opts Options) (*Action, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("creating addresses action: invalid configuration: %w", errs[0])
	}
	if cfg.Cloud == "aws" {
		c, err := provaws.New(ctx, provaws.Options{Region: cfg.AWS.Region, Endpoint: cfg.AWS.Endpoint})
		if err != nil {
			return nil, fmt.Errorf("creating addresses action: %w", err)
		}
		return NewAWS(cfg, c, opts)
	}
	cl, err := azure.New(azure.Options{SubscriptionID: cfg.Azure.SubscriptionID, Endpoint: cfg.Azure.Endpoint})
	if err != nil {
		return nil, fmt.Errorf("creating addresses action: %w", err)
	}
	return NewAzure(cfg, cl, opts)
}

// Name implements action.Action.
func (a *Action) Name() string { return "addresses" }

// Activate moves every configured address to this node. With a witness
// (t.Token > 0) the moves are fenced as the routes are (routes.Fenced): a
// newer active's token on the resources refuses this node with a fault.
func (a *Action) Activate(ctx context.Context, t action.Takeover) error {
	a.mu.Lock()
	a.token = t.Token
	a.mu.Unlock()
	return a.run(ctx, false, t.Token)
}

// Deactivate does nothing: the node taking over pulls the addresses.
func (a *Action) Deactivate(ctx context.Context, t action.Takeover) error { return nil }

// Verify, when active, moves back any address that left this node, fenced
// by the token of the last Activate.
func (a *Action) Verify(ctx context.Context, active bool) error {
	if !active {
		return nil
	}
	a.mu.Lock()
	token := a.token
	a.mu.Unlock()
	return a.run(ctx, true, token)
}

// Check confirms that every configured NIC, ENI and address exists and can
// be read, before the first takeover.
func (a *Action) Check(ctx context.Context) error { return a.m.check(ctx) }

// Status returns the last change of every address.
func (a *Action) Status() []Change {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.status)
}

func (a *Action) run(ctx context.Context, repair bool, token uint64) error {
	var changes []Change
	err := routes.Fenced(ctx, token, a.m.register(), func() error {
		var err error
		changes, err = a.m.ensure(ctx, repair)
		return err
	})
	a.mu.Lock()
	for _, c := range changes {
		i := slices.IndexFunc(a.status, func(s Change) bool { return s.Address == c.Address })
		if i >= 0 {
			a.status[i] = c
		} else {
			a.status = append(a.status, c)
		}
	}
	a.mu.Unlock()
	for _, c := range changes {
		msg := "address moved here"
		if repair {
			msg = "repaired address that left this node"
		}
		if c.Err != nil {
			a.log.Error("address not moved", "address", c.Address, "reason", c.Err.Error())
		} else {
			a.log.Info(msg, "address", c.Address, "kind", c.Kind, "took", c.Duration)
		}
		if a.opts.Observe != nil {
			a.opts.Observe(c)
		}
		action.ReportPart(ctx, action.NewPart(c.Kind+" "+c.Address, c.Started, c.Duration, 1, c.Err))
	}
	if err != nil {
		return fmt.Errorf("addresses: %w", err)
	}
	return nil
}
