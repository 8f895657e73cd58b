// Package dns is the `dns` action: on ACTIVE it points a DNS name (A and
// AAAA records, optionally one member of a Route 53 weighted or failover
// record set) at this node, on Route 53 or Azure DNS, and verifies and
// repairs the records while the node stays active. Writes are fenced: a
// TXT record at _baton.NAME carries the writer's witness token, and a node
// whose token is older than the recorded one does not overwrite.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
)

// ErrStale is returned when a newer active node (a higher fencing token)
// wrote the record: this node must not overwrite it.
var ErrStale = errors.New("a newer active node owns this DNS name")

// record is what the name holds: its addresses and the fence.
type record struct {
	V4, V6 []string // sorted
	Node   string
	Token  uint64
	found  bool // the fence record exists
}

func (r record) sameAddresses(o record) bool {
	return slices.Equal(r.V4, o.V4) && slices.Equal(r.V6, o.V6)
}

// fenceValue is the TXT record's text.
func fenceValue(node string, token uint64) string {
	return "baton node=" + node + " token=" + strconv.FormatUint(token, 10)
}

// parseFence reads a fenceValue; anything else is no fence.
func parseFence(s string) (node string, token uint64, ok bool) {
	f := strings.Fields(strings.Trim(s, `"`))
	if len(f) != 3 || f[0] != "baton" {
		return "", 0, false
	}
	n, ok1 := strings.CutPrefix(f[1], "node=")
	t, ok2 := strings.CutPrefix(f[2], "token=")
	tok, err := strconv.ParseUint(t, 10, 64)
	if !ok1 || !ok2 || err != nil {
		return "", 0, false
	}
	return n, tok, true
}

// backend is one DNS service.
type backend interface {
	// read returns the name's addresses and its fence record.
	read(ctx context.Context) (record, error)
	// write replaces the addresses and the fence with want, failing when
	// the fence no longer is prev (another writer came between), and
	// returns once the service serves the change.
	write(ctx context.Context, prev, want record) error
	describe() string
}

// Options are the action's collaborators.
type Options struct {
	Node   string // this node's name, recorded in the fence
	Logger *slog.Logger
	Clock  clock.Clock
	// Route53 and RecordSets replace the cloud clients (tests).
	Route53    Route53API
	RecordSets RecordSetsAPI
}

// Action is the dns action.
type Action struct {
	cfg  Config
	b    backend
	want record
	log  *slog.Logger
	clk  clock.Clock

	mu     sync.Mutex
	token  uint64 // of the takeover that activated
	status Status
}

// Status is shown under subsystems.dns.
type Status struct {
	Name      string    `json:"name"`
	Service   string    `json:"service"`
	Addresses []string  `json:"addresses"`
	TTL       int64     `json:"ttl"`
	Token     uint64    `json:"token"`
	LastWrite time.Time `json:"last_write,omitzero"`
	Writes    int       `json:"writes"`
	LastError string    `json:"last_error,omitempty"`
}

// New builds the action for cfg.
func New(ctx context.Context, cfg Config, opt Options) (*Action, error) {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	a := &Action{cfg: cfg, clk: opt.Clock, log: opt.Logger.With("action", "dns", "name", cfg.Name)}
	for _, s := range cfg.Addresses {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("dns.addresses: %q is not an IP address", s)
		}
		if ip.Is4() || ip.Is4In6() {
			a.want.V4 = append(a.want.V4, ip.Unmap().String())
		} else {
			a.want.V6 = append(a.want.V6, ip.String())
		}
	}
	slices.Sort(a.want.V4)
	slices.Sort(a.want.V6)
	a.want.Node = opt.Node
	var err error
	switch cfg.Cloud {
	case "aws":
		a.b, err = newRoute53(ctx, cfg, opt)
	case "azure":
		a.b, err = newAzureDNS(cfg, opt)
	default:
		err = fmt.Errorf("dns.cloud: %q is not aws or azure", cfg.Cloud)
	}
	if err != nil {
		return nil, err
	}
	a.status = Status{Name: fqdn(cfg.Name), Service: a.b.describe(), Addresses: cfg.Addresses, TTL: cfg.TTL}
	return a, nil
}

func (a *Action) Name() string { return "dns" }

// Activate points the name at this node.
func (a *Action) Activate(ctx context.Context, t action.Takeover) error {
	a.mu.Lock()
	a.token = t.Token
	a.mu.Unlock()
	return a.apply(ctx, t.Token)
}

// Deactivate leaves the records alone: the next active overwrites them,
// and a name that points nowhere is worse than one that points at a
// standby for a moment.
func (a *Action) Deactivate(context.Context, action.Takeover) error { return nil }

// Verify repairs the records of an active node.
func (a *Action) Verify(ctx context.Context, active bool) error {
	if !active {
		return nil
	}
	a.mu.Lock()
	tok := a.token
	a.mu.Unlock()
	return a.apply(ctx, tok)
}

// apply reads the name and, unless it already points here under this
// token, writes it (fenced).
func (a *Action) apply(ctx context.Context, token uint64) error {
	err := a.applyOnce(ctx, token)
	a.mu.Lock()
	a.status.Token = token
	a.status.LastError = ""
	if err != nil {
		a.status.LastError = err.Error()
	}
	a.mu.Unlock()
	return err
}

func (a *Action) applyOnce(ctx context.Context, token uint64) error {
	cur, err := a.b.read(ctx)
	if err != nil {
		return fmt.Errorf("reading %s in %s: %w", a.cfg.Name, a.b.describe(), err)
	}
	if token > 0 && cur.found && cur.Token > token {
		return action.Fault(fmt.Errorf("%w: %s records token %d (node %s), this node holds %d", ErrStale, a.cfg.Name, cur.Token, cur.Node, token))
	}
	want := a.want
	want.Token = token
	if cur.sameAddresses(want) && cur.found && cur.Token == token && cur.Node == want.Node {
		return nil
	}
	if err := a.b.write(ctx, cur, want); err != nil {
		return fmt.Errorf("pointing %s at %s in %s: %w", a.cfg.Name, strings.Join(a.cfg.Addresses, ","), a.b.describe(), err)
	}
	a.log.Info("DNS name points at this node", "addresses", a.cfg.Addresses, "token", token, "was_v4", cur.V4, "was_v6", cur.V6)
	a.mu.Lock()
	a.status.Writes++
	a.status.LastWrite = a.clk.Now()
	a.mu.Unlock()
	return nil
}

// Status reports the record and the last write.
func (a *Action) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}
