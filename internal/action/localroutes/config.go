package localroutes

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Config is the `local_routes:` section of baton.yaml.
type Config struct {
	Match Match `yaml:"match"`
	// Interval is how often the active's routes are sent even without a
	// change, and how soon a lost stream is dialled again; default 5s.
	Interval time.Duration `yaml:"interval"`
}

// Match selects the routes copied.
type Match struct {
	// Prefixes: a route is copied when its destination lies inside one.
	Prefixes []string `yaml:"prefixes"`
	// Table is the routing table, default 254 (main).
	Table int `yaml:"table"`
	// Protocol narrows to routes of one origin: a name (boot, static,
	// kernel, dhcp, bird, zebra, bgp, ospf) or a number; empty: any.
	Protocol string `yaml:"protocol"`
}

// SetDefaults fills in defaults on a fresh section (config.Defaulter).
func (c *Config) SetDefaults() {
	c.Interval = 5 * time.Second
	c.Match.Table = 254
}

var protocols = map[string]int{"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9, "dhcp": 16,
	"bird": 12, "zebra": 11, "bgp": 186, "isis": 187, "ospf": 188, "rip": 189, "eigrp": 192, "keepalived": 18, "babel": 42}

// protocol returns the protocol number, -1 for any.
func (m Match) protocol() (int, error) {
	if m.Protocol == "" {
		return -1, nil
	}
	if n, ok := protocols[m.Protocol]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(m.Protocol)
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("%q is not a route protocol name or 0..255", m.Protocol)
	}
	return n, nil
}

func (m Match) prefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range m.Prefixes {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	if len(c.Match.Prefixes) == 0 {
		report("match.prefixes", "at least one prefix is required (the routes to copy)")
	}
	for i, s := range c.Match.Prefixes {
		if _, err := netip.ParsePrefix(s); err != nil {
			report(fmt.Sprintf("match.prefixes[%d]", i), fmt.Sprintf("%q is not a CIDR prefix", s))
		}
	}
	if c.Match.Table < 1 || c.Match.Table > 0xfffffff0 {
		report("match.table", fmt.Sprintf("%d is not a routing table", c.Match.Table))
	}
	if _, err := c.Match.protocol(); err != nil {
		report("match.protocol", err.Error())
	}
	if c.Interval < 100*time.Millisecond {
		report("interval", fmt.Sprintf("%s is below 100ms", c.Interval))
	}
}
