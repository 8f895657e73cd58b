// Package sessionsync replicates the kernel's connection-tracking table to
// the peer appliance, so that established connections (NATed ones
// included) survive a failover.
//
// The active node follows its table through ctnetlink events, with a full
// dump at start, after every reconnection and after any event loss, and
// streams the changes over the peer link (mutual TLS) in acknowledged,
// ordered batches. The standby holds the peer's state: either injected
// into its own kernel table as it arrives (strategy inject) or in memory,
// committed to the kernel on takeover before traffic is attracted
// (strategy commit, the takeover pipeline's prepare phase).
package sessionsync

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/batonha/baton/internal/provider/conntrack"
)

// Strategies.
const (
	StrategyCommit = "commit"
	StrategyInject = "inject"
)

// Config is the `sessions:` section of baton.yaml.
type Config struct {
	// Enabled turns session sync on (default true when the section is
	// present).
	Enabled bool `yaml:"enabled"`
	// Strategy is how the standby holds the peer's connections: inject
	// (held in memory and written to its kernel table in the background,
	// InjectDelay after they arrive, so a takeover has almost nothing left
	// to do; default, see bench/sessions/README.md) or commit (held in
	// memory, written to the kernel on takeover, as conntrackd does).
	Strategy string `yaml:"strategy"`
	// InjectDelay (inject strategy): the standby writes changes to its
	// kernel once none has arrived for this long (default 50ms), and
	// InjectMaxDelay (default 1s) after the oldest waiting one at the
	// latest. Changes to one connection in between cost one write; a burst
	// is received first and written after, so the two do not compete for
	// the CPU. A takeover writes what is still waiting.
	InjectDelay    time.Duration `yaml:"inject_delay"`
	InjectMaxDelay time.Duration `yaml:"inject_max_delay"`
	// Protocols synced, default [tcp, udp].
	Protocols []string `yaml:"protocols"`
	// Include: when set, only connections whose original source or
	// destination lies in one of these prefixes are synced.
	Include []string `yaml:"include"`
	// Exclude: connections with an original or reply address in one of
	// these prefixes are never synced. The addresses of the heartbeat
	// paths, the peer channel and the peer link are always excluded.
	Exclude []string `yaml:"exclude"`
	// Marks: when set, only connections whose mark matches one of these
	// ("VALUE" or "VALUE/MASK", decimal or 0x hex) are synced.
	Marks []string `yaml:"marks"`
	// Zones: when set, only connections in these conntrack zones are synced.
	Zones []int `yaml:"zones"`
	// BatchSize is the most changes per batch, default 512.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is how long a partial batch waits for more changes,
	// default 2ms.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Window is the most unacknowledged batches in flight, default 64.
	Window int `yaml:"window"`
	// EventBuffer is the netlink receive buffer for conntrack events in
	// bytes, default 8 MiB; it doubles after an overrun up to
	// EventBufferMax (default 64 MiB).
	EventBuffer    int `yaml:"event_buffer"`
	EventBufferMax int `yaml:"event_buffer_max"`
	// Reconnect is the delay before redialling the peer, default 1s.
	Reconnect time.Duration `yaml:"reconnect"`
	// Refresh (inject strategy) is how often held entries in the kernel
	// have their timeouts re-armed, default 30s.
	Refresh time.Duration `yaml:"refresh"`
	// MaxEntries bounds the peer's connections held here; more are
	// dropped and counted. 0 (the default) sizes it to the kernel's
	// nf_conntrack_max, which this node could not hold more of anyway.
	MaxEntries int `yaml:"max_entries"`
}

// SetDefaults fills in defaults on a fresh section (config.Defaulter).
func (c *Config) SetDefaults() {
	c.Enabled = true
	c.Strategy = StrategyInject
	c.Protocols = []string{"tcp", "udp"}
	c.BatchSize = 512
	c.FlushInterval = 2 * time.Millisecond
	c.InjectDelay = 50 * time.Millisecond
	c.InjectMaxDelay = time.Second
	c.Window = 64
	c.EventBuffer = 8 << 20
	c.EventBufferMax = 64 << 20
	c.Reconnect = time.Second
	c.Refresh = 30 * time.Second
}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	if c.Strategy != StrategyCommit && c.Strategy != StrategyInject {
		report("strategy", fmt.Sprintf("must be %s or %s, not %q", StrategyCommit, StrategyInject, c.Strategy))
	}
	if len(c.Protocols) == 0 {
		report("protocols", "must list at least one protocol")
	}
	for i, p := range c.Protocols {
		if _, ok := conntrack.ProtoNumber(p); !ok {
			report(fmt.Sprintf("protocols[%d]", i), fmt.Sprintf("unknown protocol %q (tcp, udp, icmp, icmpv6, sctp)", p))
		}
	}
	for i, p := range c.Include {
		if _, err := parsePrefix(p); err != nil {
			report(fmt.Sprintf("include[%d]", i), err.Error())
		}
	}
	for i, p := range c.Exclude {
		if _, err := parsePrefix(p); err != nil {
			report(fmt.Sprintf("exclude[%d]", i), err.Error())
		}
	}
	for i, m := range c.Marks {
		if _, err := parseMark(m); err != nil {
			report(fmt.Sprintf("marks[%d]", i), err.Error())
		}
	}
	for i, z := range c.Zones {
		if z < 0 || z > 65535 {
			report(fmt.Sprintf("zones[%d]", i), "must be 0..65535")
		}
	}
	if c.BatchSize < 1 || c.BatchSize > 65535 {
		report("batch_size", "must be 1..65535")
	}
	if c.FlushInterval < 0 || c.FlushInterval > time.Second {
		report("flush_interval", "must be 0..1s")
	}
	if c.InjectDelay < 0 || c.InjectDelay > 10*time.Second {
		report("inject_delay", "must be 0..10s")
	}
	if c.InjectMaxDelay < c.InjectDelay || c.InjectMaxDelay > 60*time.Second {
		report("inject_max_delay", "must be inject_delay..60s")
	}
	if c.MaxEntries < 0 {
		report("max_entries", "must not be negative (0: nf_conntrack_max)")
	}
	if c.Window < 1 || c.Window > 4096 {
		report("window", "must be 1..4096")
	}
	if c.EventBuffer < 64<<10 {
		report("event_buffer", "must be at least 65536 bytes")
	}
	if c.EventBufferMax < c.EventBuffer {
		report("event_buffer_max", "must be at least event_buffer")
	}
	if c.Reconnect <= 0 {
		report("reconnect", "must be positive")
	}
	if c.Refresh < time.Second {
		report("refresh", "must be at least 1s")
	}
}

// parsePrefix accepts a prefix or a bare address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("not an address prefix: %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an address or prefix: %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

type markMatch struct{ value, mask uint32 }

func parseMark(s string) (markMatch, error) {
	v, m, hasMask := strings.Cut(s, "/")
	value, err := strconv.ParseUint(strings.TrimSpace(v), 0, 32)
	if err != nil {
		return markMatch{}, fmt.Errorf("mark %q: want VALUE or VALUE/MASK (decimal or 0x hex)", s)
	}
	mask := uint64(0xffffffff)
	if hasMask {
		if mask, err = strconv.ParseUint(strings.TrimSpace(m), 0, 32); err != nil {
			return markMatch{}, fmt.Errorf("mark %q: bad mask", s)
		}
	}
	return markMatch{value: uint32(value) & uint32(mask), mask: uint32(mask)}, nil
}
