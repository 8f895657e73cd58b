package localroutes

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Route is one kernel route as it travels between the appliances. The
// device is named, not numbered: both appliances name their interfaces
// alike.
type Route struct {
	Dst      string `json:"dst"`
	Gw       string `json:"gw,omitempty"`
	Dev      string `json:"dev,omitempty"`
	Metric   int    `json:"metric,omitempty"`
	Protocol int    `json:"protocol"`
	Scope    int    `json:"scope,omitempty"`
	Table    int    `json:"table"`
}

// key identifies a route in its table (as the kernel does).
func (r Route) key() string { return fmt.Sprintf("%d %s %d", r.Table, r.Dst, r.Metric) }

func sortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int { return strings.Compare(a.key()+a.Gw+a.Dev, b.key()+b.Gw+b.Dev) })
}

// snapshot is what a node sends: its matching routes and whether it was
// active when it read them (only an active node's routes are kept).
type snapshot struct {
	Active bool    `json:"active"`
	Routes []Route `json:"routes"`
}

const (
	frameSnapshot = 1
	maxRoutes     = 100_000
)

// decodeSnapshot parses and checks a snapshot frame.
func decodeSnapshot(p []byte) (snapshot, error) {
	var s snapshot
	if err := json.Unmarshal(p, &s); err != nil {
		return snapshot{}, fmt.Errorf("decoding a route snapshot: %w", err)
	}
	if len(s.Routes) > maxRoutes {
		return snapshot{}, fmt.Errorf("decoding a route snapshot: %d routes (at most %d)", len(s.Routes), maxRoutes)
	}
	for _, r := range s.Routes {
		if err := r.check(); err != nil {
			return snapshot{}, fmt.Errorf("decoding a route snapshot: %w", err)
		}
	}
	return s, nil
}

func (r Route) check() error {
	p, err := netip.ParsePrefix(r.Dst)
	if err != nil || p.Masked() != p {
		return fmt.Errorf("route destination %q is not a CIDR prefix", r.Dst)
	}
	if r.Gw != "" {
		if _, err := netip.ParseAddr(r.Gw); err != nil {
			return fmt.Errorf("route %s: gateway %q is not an address", r.Dst, r.Gw)
		}
	}
	if r.Gw == "" && r.Dev == "" {
		return errors.New("route " + r.Dst + " has neither gateway nor device")
	}
	if len(r.Dev) > 15 || strings.ContainsAny(r.Dev, "/ \x00") {
		return fmt.Errorf("route %s: %q is not an interface name", r.Dst, r.Dev)
	}
	if r.Table < 1 || r.Protocol < 0 || r.Protocol > 255 || r.Scope < 0 || r.Scope > 255 || r.Metric < 0 {
		return fmt.Errorf("route %s: table, protocol, scope or metric out of range", r.Dst)
	}
	return nil
}

// matcher selects the routes of the configuration.
type matcher struct {
	prefixes []netip.Prefix
	table    int
	protocol int // -1: any
}

func newMatcher(m Match) (matcher, error) {
	ps, err := m.prefixes()
	if err != nil {
		return matcher{}, err
	}
	proto, err := m.protocol()
	if err != nil {
		return matcher{}, err
	}
	return matcher{prefixes: ps, table: m.Table, protocol: proto}, nil
}

func (m matcher) match(r Route) bool {
	if r.Table != m.table || (m.protocol >= 0 && r.Protocol != m.protocol) {
		return false
	}
	dst, err := netip.ParsePrefix(r.Dst)
	if err != nil {
		return false
	}
	for _, p := range m.prefixes {
		if p.Addr().Is4() == dst.Addr().Is4() && p.Bits() <= dst.Bits() && p.Contains(dst.Addr()) {
			return true
		}
	}
	return false
}
