// Package vip is the action that holds virtual IP addresses on a shared
// layer-2 segment: the active node adds them to its interfaces and announces
// them (gratuitous ARP for IPv4, unsolicited neighbour advertisements for
// IPv6), in a burst and then optionally at a steady refresh interval; a node
// that leaves the active role removes them. Optionally the addresses live on
// a macvlan with a virtual MAC shared by both nodes, so neighbours keep
// their ARP entries across a failover and only the switches relearn.
//
// Before taking an address the action can probe the segment (ARP probe or
// duplicate address detection); an address another host already answers
// for is refused with an error wrapping ErrConflict, which must move the
// node to FAULT.
package vip

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/batonha/baton/internal/config/rule"
)

// Defaults for the zero values of Config.
const (
	DefaultGARPCount       = 5
	DefaultGARPInterval    = 200 * time.Millisecond
	DefaultConflictTimeout = 300 * time.Millisecond
)

// Config is the `vip:` section of baton.yaml.
type Config struct {
	// Addresses are the virtual addresses, each with the prefix length it
	// is configured with (10.0.0.100/24; a bare address means /32 or /128).
	Addresses []Address `yaml:"addresses"`
	// GARPCount is how many announcement rounds a takeover sends: the
	// first at once, the others GARPInterval apart. Default 5.
	GARPCount int `yaml:"garp_count"`
	// GARPInterval is the gap inside the burst. Default 200ms.
	GARPInterval time.Duration `yaml:"garp_interval"`
	// Refresh repeats one announcement round at this interval while
	// active, after the burst; 0 (the default) turns it off.
	Refresh time.Duration `yaml:"refresh"`
	// VirtualMAC, when set, puts the addresses on a macvlan with this MAC
	// on top of each interface ("vip-IFACE"); both nodes use the same one.
	VirtualMAC string `yaml:"virtual_mac"`
	// ConflictCheck probes for another host using an address before
	// adding it and refuses to take it if one answers.
	ConflictCheck bool `yaml:"conflict_check"`
	// ConflictTimeout is how long a probe waits for an answer. Default 300ms.
	ConflictTimeout time.Duration `yaml:"conflict_timeout"`
	// ConflictIgnore lists MACs whose answers are not conflicts: the
	// peer's interfaces, which may still hold the address when this node
	// takes over from a hung peer. The virtual MAC is always ignored.
	ConflictIgnore []string `yaml:"conflict_ignore"`
}

// Address is one virtual address and the interface that carries it.
type Address struct {
	Address   string `yaml:"address"`
	Interface string `yaml:"interface"`
}

// WithDefaults returns c with zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.GARPCount == 0 {
		c.GARPCount = DefaultGARPCount
	}
	if c.GARPInterval == 0 {
		c.GARPInterval = DefaultGARPInterval
	}
	if c.ConflictTimeout == 0 {
		c.ConflictTimeout = DefaultConflictTimeout
	}
	return c
}

// parsePrefix accepts "ADDR/BITS" or a bare address (a host prefix).
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.ParsePrefix(s)
}

// Validate reports every problem in c (after defaults), each naming its key
// as vip.KEY.
func (c Config) Validate() []error {
	return rule.Errors("vip", c.Check)
}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	r := rule.New(report)
	bad := r.Errorf
	if len(c.Addresses) == 0 {
		bad("addresses", "at least one address is required")
	}
	seen := map[netip.Addr]int{}
	for i, a := range c.Addresses {
		key := fmt.Sprintf("addresses[%d]", i)
		p, err := parsePrefix(a.Address)
		switch {
		case a.Address == "":
			bad(key+".address", "required (for example 10.0.0.100/24)")
		case err != nil:
			bad(key+".address", "%q is not an address with a prefix length (for example 10.0.0.100/24): %v", a.Address, err)
		case p.Addr().Zone() != "":
			bad(key+".address", "%q: zones are not allowed", a.Address)
		case p.Addr().Is4In6():
			bad(key+".address", "%q: write IPv4 addresses in dotted form", a.Address)
		case !p.Addr().IsGlobalUnicast():
			bad(key+".address", "%q is not a unicast address a host can own", a.Address)
		default:
			if j, dup := seen[p.Addr()]; dup {
				bad(key+".address", "%s is already listed as addresses[%d]", p.Addr(), j)
			}
			seen[p.Addr()] = i
		}
		r.At(key).InterfaceName("interface", a.Interface)
	}
	if c.GARPCount < 1 || c.GARPCount > 100 {
		bad("garp_count", "%d is out of range 1..100", c.GARPCount)
	}
	if c.GARPInterval < 0 || c.GARPInterval > time.Minute {
		bad("garp_interval", "%v is out of range 0..1m", c.GARPInterval)
	}
	if c.Refresh != 0 && (c.Refresh < 100*time.Millisecond || c.Refresh > 24*time.Hour) {
		bad("refresh", "%v is out of range 100ms..24h (0 turns it off)", c.Refresh)
	}
	if c.VirtualMAC != "" {
		if _, err := parseUnicastMAC(c.VirtualMAC); err != nil {
			bad("virtual_mac", "%v", err)
		}
	}
	if c.ConflictTimeout < 10*time.Millisecond || c.ConflictTimeout > 10*time.Second {
		bad("conflict_timeout", "%v is out of range 10ms..10s", c.ConflictTimeout)
	}
	for i, m := range c.ConflictIgnore {
		if _, err := parseUnicastMAC(m); err != nil {
			bad(fmt.Sprintf("conflict_ignore[%d]", i), "%v", err)
		}
	}
}

func parseUnicastMAC(s string) (net.HardwareAddr, error) {
	m, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a MAC address: %w", s, err)
	}
	if len(m) != 6 {
		return nil, fmt.Errorf("%q is not a 6-byte Ethernet address", s)
	}
	if m[0]&1 != 0 {
		return nil, fmt.Errorf("%q is a multicast address", s)
	}
	if string(m) == string(make([]byte, 6)) {
		return nil, fmt.Errorf("%q is the zero address", s)
	}
	return m, nil
}
