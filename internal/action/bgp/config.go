// Package bgp is the action that steers traffic with BGP: an embedded
// speaker (internal/provider/bgp) announces prefixes with next-hop self to
// route servers (Azure Route Server, AWS VPC Route Server, or any BGP
// speaker). In active-active mode every healthy node announces and a
// failing check or maintenance withdraws at once; in active-standby mode
// the active node announces plainly and the standby announces with its AS
// path prepended, or not at all.
package bgp

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/batonha/baton/internal/peerings"
)

// Modes.
const (
	ModeActiveActive  = "active-active"
	ModeActiveStandby = "active-standby"
	StandbyPrepend    = "prepend"
	StandbyWithdraw   = "withdraw"
)

// Defaults for a fresh section.
const (
	DefaultPrepend     = 3
	DefaultMultihopTTL = 2
	// DefaultMaxPrefixes bounds what a peer may send (every route is
	// rejected, but GoBGP holds them): route servers do send routes
	// (Azure Route Server the VNet's and the gateways'), so the default
	// is not 0.
	DefaultMaxPrefixes   = 20000
	DefaultHold          = 9 * time.Second
	DefaultKeepalive     = 3 * time.Second
	DefaultConnectRetry  = 5 * time.Second
	DefaultIdleHold      = 3 * time.Second
	DefaultBFDInterval   = 300 * time.Millisecond
	DefaultBFDMultiplier = 3
	DefaultPeerPort      = 179
)

// Config is the `bgp:` section of baton.yaml.
type Config struct {
	// Mode is active-active (default: every healthy node announces) or
	// active-standby (the active node announces, the standby prepends or
	// withdraws).
	Mode string `yaml:"mode"`
	// ASN is this appliance's AS number (required). Every appliance of a
	// set uses the same one so that the route server sees equal paths.
	ASN int `yaml:"asn"`
	// RouterID is the BGP identifier; default: the local address used to
	// reach the first peer.
	RouterID string `yaml:"router_id"`
	// Prefixes are announced with next-hop self (IPv4, at least one).
	Prefixes []string `yaml:"prefixes"`
	// Standby is what the standby does in active-standby mode: prepend
	// (default) or withdraw.
	Standby string `yaml:"standby"`
	// Prepend is how many extra times the standby puts its ASN in the AS
	// path. Default 3.
	Prepend int `yaml:"prepend"`
	// Peers are the route-server instances (at least one).
	Peers []Peer `yaml:"peers"`
	// Timers apply to every session.
	Timers Timers `yaml:"timers"`
	// BFD, when enabled, runs on each session while it is established.
	BFD BFD `yaml:"bfd"`
	// Peerings configures `baton peerings`, the reconciler that adds and
	// removes the route server's peerings as the scale set changes.
	Peerings *peerings.Config `yaml:"peerings"`
}

// Peer is one route-server instance.
type Peer struct {
	Address     string `yaml:"address"`      // required IPv4 address
	ASN         int    `yaml:"asn"`          // required, 65515 for Azure Route Server
	Port        int    `yaml:"port"`         // default 179
	Source      string `yaml:"source"`       // optional local address to dial from
	MultihopTTL int    `yaml:"multihop_ttl"` // eBGP multihop TTL, default 2
	// PasswordFile holds the session's TCP-MD5 key (RFC 2385, at most 80
	// characters); optional.
	PasswordFile string `yaml:"password_file"`
	// MaxPrefixes: a peer that sends more prefixes is torn down (CEASE,
	// maximum number of prefixes reached) and redialled after
	// timers.idle_hold; 0 tears it down at its first prefix (a route
	// server configured to send nothing). Default DefaultMaxPrefixes.
	MaxPrefixes int `yaml:"max_prefixes"`
}

// Timers are the BGP session timers, whole seconds.
type Timers struct {
	Hold         time.Duration `yaml:"hold"`          // default 9s (0 or 3s..65535s)
	Keepalive    time.Duration `yaml:"keepalive"`     // default 3s, at most hold/3
	ConnectRetry time.Duration `yaml:"connect_retry"` // default 5s
	// IdleHold is the wait after a session reset before reconnecting;
	// GoBGP's own default of 30s makes recovery slow. Default 3s.
	IdleHold time.Duration `yaml:"idle_hold"`
}

// BFD is bidirectional forwarding detection on the sessions (single hop).
type BFD struct {
	Enabled    bool          `yaml:"enabled"`
	MinTx      time.Duration `yaml:"min_tx"`     // default 300ms
	MinRx      time.Duration `yaml:"min_rx"`     // default 300ms
	Multiplier int           `yaml:"multiplier"` // default 3
}

// SetDefaults fills in defaults on a fresh section (config.Defaulter).
func (c *Config) SetDefaults() {
	c.Mode = ModeActiveActive
	c.Standby = StandbyPrepend
	c.Prepend = DefaultPrepend
	c.Timers = Timers{Hold: DefaultHold, Keepalive: DefaultKeepalive, ConnectRetry: DefaultConnectRetry, IdleHold: DefaultIdleHold}
	c.BFD = BFD{MinTx: DefaultBFDInterval, MinRx: DefaultBFDInterval, Multiplier: DefaultBFDMultiplier}
}

// SetDefaults fills in defaults on a fresh peer (config.Defaulter).
func (p *Peer) SetDefaults() {
	p.Port = DefaultPeerPort
	p.MultihopTTL = DefaultMultihopTTL
	p.MaxPrefixes = DefaultMaxPrefixes
}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	bad := func(key, format string, args ...any) { report(key, fmt.Sprintf(format, args...)) }
	switch c.Mode {
	case ModeActiveActive, ModeActiveStandby:
	default:
		bad("mode", "%q is not active-active or active-standby", c.Mode)
	}
	if c.ASN < 1 || c.ASN > 4294967294 {
		bad("asn", "%d is out of range 1..4294967294 (required)", c.ASN)
	}
	if c.RouterID != "" {
		if a, err := netip.ParseAddr(c.RouterID); err != nil || !a.Is4() {
			bad("router_id", "%q is not an IPv4 address", c.RouterID)
		}
	}
	if len(c.Prefixes) == 0 {
		bad("prefixes", "at least one prefix is required")
	}
	seen := map[netip.Prefix]int{}
	for i, s := range c.Prefixes {
		key := fmt.Sprintf("prefixes[%d]", i)
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			bad(key, "%q is not a prefix such as 10.0.0.0/8: %v", s, err)
		case !p.Addr().Is4():
			bad(key, "%q: only IPv4 prefixes are supported", s)
		case p.Masked() != p:
			bad(key, "%q has host bits set (did you mean %v?)", s, p.Masked())
		default:
			if j, dup := seen[p]; dup {
				bad(key, "%v is already listed as prefixes[%d]", p, j)
			}
			seen[p] = i
		}
	}
	switch c.Standby {
	case StandbyPrepend, StandbyWithdraw:
	default:
		bad("standby", "%q is not prepend or withdraw", c.Standby)
	}
	if c.Prepend < 1 || c.Prepend > 10 {
		bad("prepend", "%d is out of range 1..10", c.Prepend)
	}
	if len(c.Peers) == 0 {
		bad("peers", "at least one peer (route-server instance) is required")
	}
	addrs := map[netip.Addr]int{}
	for i, p := range c.Peers {
		key := fmt.Sprintf("peers[%d]", i)
		a, err := netip.ParseAddr(p.Address)
		switch {
		case p.Address == "":
			bad(key+".address", "required")
		case err != nil || !a.Is4():
			bad(key+".address", "%q is not an IPv4 address", p.Address)
		default:
			if j, dup := addrs[a]; dup {
				bad(key+".address", "%v is already listed as peers[%d]", a, j)
			}
			addrs[a] = i
		}
		if p.ASN < 1 || p.ASN > 4294967294 {
			bad(key+".asn", "%d is out of range 1..4294967294 (required; 65515 for Azure Route Server)", p.ASN)
		}
		if p.Port < 1 || p.Port > 65535 {
			bad(key+".port", "%d is out of range 1..65535", p.Port)
		}
		if p.Source != "" {
			if s, err := netip.ParseAddr(p.Source); err != nil || !s.Is4() {
				bad(key+".source", "%q is not an IPv4 address", p.Source)
			}
		}
		if p.MultihopTTL < 0 || p.MultihopTTL > 255 {
			bad(key+".multihop_ttl", "%d is out of range 0..255 (0: directly connected)", p.MultihopTTL)
		}
		if p.MaxPrefixes < 0 || p.MaxPrefixes > 1<<24 {
			bad(key+".max_prefixes", "%d is out of range 0..%d (0: none accepted)", p.MaxPrefixes, 1<<24)
		}
		if p.PasswordFile != "" && !filepath.IsAbs(p.PasswordFile) {
			bad(key+".password_file", "%q is not an absolute path", p.PasswordFile)
		}
	}
	whole := func(key string, d, lo, hi time.Duration) {
		if d%time.Second != 0 {
			bad(key, "%v: BGP timers are whole seconds", d)
		} else if d < lo || d > hi {
			bad(key, "%v is out of range %v..%v", d, lo, hi)
		}
	}
	t := c.Timers
	if t.Hold != 0 {
		whole("timers.hold", t.Hold, 3*time.Second, 65535*time.Second)
	}
	whole("timers.keepalive", t.Keepalive, time.Second, 21845*time.Second)
	if t.Hold != 0 && t.Keepalive > t.Hold/3 {
		bad("timers.keepalive", "%v is more than a third of timers.hold %v", t.Keepalive, t.Hold)
	}
	whole("timers.connect_retry", t.ConnectRetry, time.Second, time.Hour)
	whole("timers.idle_hold", t.IdleHold, time.Second, time.Hour)
	if c.BFD.Enabled {
		if c.BFD.MinTx < 10*time.Millisecond || c.BFD.MinTx > 10*time.Second {
			bad("bfd.min_tx", "%v is out of range 10ms..10s", c.BFD.MinTx)
		}
		if c.BFD.MinRx < 10*time.Millisecond || c.BFD.MinRx > 10*time.Second {
			bad("bfd.min_rx", "%v is out of range 10ms..10s", c.BFD.MinRx)
		}
		if c.BFD.Multiplier < 1 || c.BFD.Multiplier > 255 {
			bad("bfd.multiplier", "%d is out of range 1..255", c.BFD.Multiplier)
		}
		for i, p := range c.Peers {
			if p.MultihopTTL != 0 {
				bad(fmt.Sprintf("peers[%d].multihop_ttl", i), "BFD is single-hop only: set multihop_ttl: 0 for a directly connected peer, or turn bfd off")
			}
		}
	}
	// c.Peerings is a config.Checker of its own: the loader checks it.
	if c.Peerings != nil && c.Peerings.Health.Port != 0 && c.Mode != ModeActiveActive {
		report("peerings.health.port", "only with mode active-active: a standby answers 503 but keeps its peering to announce its prepended path")
	}
}

// prefixes returns the parsed prefixes of a checked configuration.
func (c *Config) prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.Prefixes))
	for _, s := range c.Prefixes {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}
