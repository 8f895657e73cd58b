package cloud

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/batonha/baton/internal/lab"
)

// Fabric makes a lab host behave as a VPC router: each emulated route
// table is a kernel routing table, selected by the interface a packet
// enters on (the subnet the table is associated with), and each emulated
// route becomes a kernel route via the appliance its target names.
type Fabric struct {
	host *lab.Host
	log  *slog.Logger

	mu     sync.Mutex
	tables map[string]int    // emulated table (lower case) → kernel table
	hops   map[string]net.IP // route target → next-hop address on the fabric
	errs   []error
}

// NewFabric returns a fabric router on h; h must forward IPv4.
func NewFabric(h *lab.Host, log *slog.Logger) *Fabric {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fabric{host: h, log: log.With("component", "fabric"), tables: map[string]int{}, hops: map[string]net.IP{}}
}

// Associate binds an emulated route table to the subnet behind ifname:
// packets entering the fabric on ifname are routed by kernel table kt
// first (falling back to the main table when it has no route).
func (f *Fabric) Associate(table, ifname string, kt int) error {
	if kt <= 0 || kt >= 250 {
		return fmt.Errorf("associating route table %s with %s: kernel table %d outside 1..249", table, ifname, kt)
	}
	r := netlink.NewRule()
	r.IifName = ifname
	r.Table = kt
	r.Priority = 1000 + kt
	if err := f.host.Handle().RuleAdd(r); err != nil {
		return fmt.Errorf("adding rule iif %s lookup %d in %s: %w", ifname, kt, f.host.NS(), err)
	}
	f.mu.Lock()
	f.tables[strings.ToLower(table)] = kt
	f.mu.Unlock()
	return nil
}

// Hop says where traffic for a route target goes: target is an ENI or
// instance ID (AWS) or a next-hop IP (Azure), ip the appliance's address
// on the fabric.
func (f *Fabric) Hop(target, ip string) error {
	a := net.ParseIP(ip)
	if a == nil {
		return fmt.Errorf("fabric hop for %s: %q is not an IP address", target, ip)
	}
	f.mu.Lock()
	f.hops[target] = a
	f.mu.Unlock()
	return nil
}

// Apply makes the kernel follow one emulated route: a route via the
// target's hop, or a blackhole when the target is not an appliance the
// fabric knows (as a VPC drops traffic to a route whose target is gone).
// Changes to tables that are not associated are ignored.
func (f *Fabric) Apply(c RouteChange) error {
	f.mu.Lock()
	kt, ok := f.tables[strings.ToLower(c.Table)]
	gw := f.hops[c.Target]
	f.mu.Unlock()
	if !ok {
		return nil
	}
	_, dst, err := net.ParseCIDR(c.Destination)
	if err != nil {
		return fmt.Errorf("applying route %s of %s: %w", c.Destination, c.Table, err)
	}
	r := &netlink.Route{Dst: dst, Table: kt}
	if gw != nil {
		r.Gw = gw
	} else {
		r.Type = unix.RTN_BLACKHOLE
	}
	if err := f.host.Handle().RouteReplace(r); err != nil {
		return fmt.Errorf("replacing route %s in table %d of %s: %w", c.Destination, kt, f.host.NS(), err)
	}
	f.log.Info("fabric route follows the route table", "table", c.Table, "destination", c.Destination, "target", c.Target, "via", gw)
	return nil
}

// Follow is an OnRouteChange hook: it applies every change and keeps the
// errors for Err.
func (f *Fabric) Follow(c RouteChange) {
	if err := f.Apply(c); err != nil {
		f.log.Error("fabric route not applied", "reason", err.Error())
		f.mu.Lock()
		f.errs = append(f.errs, err)
		f.mu.Unlock()
	}
}

// Err returns the errors Follow met, if any.
func (f *Fabric) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}

// Gateway returns the next hop of dst in the kernel table of the emulated
// table: an address, "blackhole", or "" when there is no route.
func (f *Fabric) Gateway(table, dst string) (string, error) {
	f.mu.Lock()
	kt, ok := f.tables[strings.ToLower(table)]
	f.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("route table %s is not associated with the fabric", table)
	}
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		return "", fmt.Errorf("parsing %q: %w", dst, err)
	}
	rs, err := f.host.Handle().RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: kt, Dst: d}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
	if err != nil {
		return "", fmt.Errorf("listing table %d of %s: %w", kt, f.host.NS(), err)
	}
	for _, r := range rs {
		if r.Type == unix.RTN_BLACKHOLE {
			return "blackhole", nil
		}
		if r.Gw != nil {
			return r.Gw.String(), nil
		}
	}
	return "", nil
}
