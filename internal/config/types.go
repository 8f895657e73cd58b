// Package config loads baton's YAML configuration, applies BATON_
// environment overrides and defaults, and validates the result.
package config

import (
	"time"

	"github.com/batonha/baton/internal/action/addresses"
	"github.com/batonha/baton/internal/action/bgp"
	"github.com/batonha/baton/internal/action/dns"
	"github.com/batonha/baton/internal/action/hooks"
	"github.com/batonha/baton/internal/action/localroutes"
	"github.com/batonha/baton/internal/action/probe"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/action/vip"
	"github.com/batonha/baton/internal/alerts"
	"github.com/batonha/baton/internal/check"
	"github.com/batonha/baton/internal/configsync"
	"github.com/batonha/baton/internal/hostevents"
	"github.com/batonha/baton/internal/sessionsync"
	"github.com/batonha/baton/internal/witness"
)

// Config is the whole of /etc/baton/baton.yaml.
type Config struct {
	Node      Node           `yaml:"node"`
	Log       Log            `yaml:"log"`
	Heartbeat Heartbeat      `yaml:"heartbeat"`
	Peer      Peer           `yaml:"peer"`
	Checks    []check.Config `yaml:"checks"`
	Probe     probe.Config   `yaml:"probe"`
	Hooks     hooks.Config   `yaml:"hooks"`
	API       API            `yaml:"api"`
	Metrics   Metrics        `yaml:"metrics"`
	Link      Link           `yaml:"link"`
	UI        UI             `yaml:"ui"` // the status page's own listener (ui.go)

	// Optional actions. Each section's type lives in the package of the
	// action and takes part in defaults and validation through the
	// Defaulter and Checker interfaces.
	VIP         *vip.Config         `yaml:"vip"`          // virtual IPs with gratuitous ARP / unsolicited NA
	Routes      *routes.Config      `yaml:"routes"`       // cloud route tables (AWS, Azure)
	Addresses   *addresses.Config   `yaml:"addresses"`    // cloud secondary and public IPs
	Sessions    *sessionsync.Config `yaml:"sessions"`     // conntrack replication to the peer
	Sync        *configsync.Config  `yaml:"sync"`         // configuration file replication
	BGP         *bgp.Config         `yaml:"bgp"`          // announcements to route servers
	Witness     *witness.Config     `yaml:"witness"`      // lease that a node must hold to be active
	Events      *hostevents.Config  `yaml:"events"`       // planned host events drain the node first
	Alerts      *alerts.Config      `yaml:"alerts"`       // transitions posted to webhooks and e-mail
	DNS         *dns.Config         `yaml:"dns"`          // a DNS name that follows the active
	LocalRoutes *localroutes.Config `yaml:"local_routes"` // the active's kernel routes, copied to the standby
}

// Node describes this appliance.
type Node struct {
	Name         string        `yaml:"name"`          // required, [A-Za-z0-9._-]{1,63}
	Priority     int           `yaml:"priority"`      // 1..254, default 100; higher is preferred
	Preempt      bool          `yaml:"preempt"`       // default false: no preferred host
	PreemptDelay time.Duration `yaml:"preempt_delay"` // default 0
	StateDir     string        `yaml:"state_dir"`     // default /var/lib/baton
	// TrackInterfaces are interfaces besides the VIP interfaces whose
	// going operationally down moves this node to FAULT (link_down).
	TrackInterfaces []string `yaml:"track_interfaces"`
	// LinkRise is how long a tracked interface must be up again before
	// the node leaves FAULT; default one heartbeat interval.
	LinkRise time.Duration `yaml:"link_rise"`
}

// Log configures the one slog logger.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error, default info
	Format string `yaml:"format"` // text|json, default text
}

// Heartbeat configures the UDP heartbeat protocol.
type Heartbeat struct {
	Interval     time.Duration `yaml:"interval"`      // >= 10ms, default 1s
	Misses       int           `yaml:"misses"`        // >= 1, default 3: a path is down after Misses*Interval of silence
	Listen       string        `yaml:"listen"`        // UDP host:port, default ":5405"
	KeyFile      string        `yaml:"key_file"`      // required: pre-shared key (at least 16 bytes); signs
	KeyFiles     []string      `yaml:"key_files"`     // more keys accepted (not used to sign): key rotation
	ReplayWindow int           `yaml:"replay_window"` // 64..4096, default 1024
}

// Peer is the other appliance of the pair.
type Peer struct {
	Name    string      `yaml:"name"`    // required, differs from node.name
	Paths   []Path      `yaml:"paths"`   // at least one
	Checks  []PeerCheck `yaml:"checks"`  // extra liveness checks that count as paths
	Channel Channel     `yaml:"channel"` // TCP peer channel
}

// Path is one network path to the peer. Both nodes name a path alike.
type Path struct {
	Name    string `yaml:"name"`    // required, unique
	Address string `yaml:"address"` // peer's UDP host:port on this path, required
	Source  string `yaml:"source"`  // optional local IP to send from
}

// PeerCheck is an extra probe of the peer that counts as a path.
type PeerCheck struct {
	Name     string        `yaml:"name"`     // required, unique among paths and peer checks
	Type     string        `yaml:"type"`     // icmp|tcp|http
	Target   string        `yaml:"target"`   // icmp: IP; tcp: host:port; http: URL (http or https)
	Interval time.Duration `yaml:"interval"` // default 1s
	Timeout  time.Duration `yaml:"timeout"`  // default 500ms, < interval
	Misses   int           `yaml:"misses"`   // default heartbeat.misses
	Insecure bool          `yaml:"insecure"` // https: skip certificate verification
}

// Channel is the TCP peer channel: it carries heartbeats too, and its
// closing tells at once that the peer's process is gone.
type Channel struct {
	Enabled bool   `yaml:"enabled"` // default true when address is set
	Listen  string `yaml:"listen"`  // TCP host:port, default ":5406"
	Address string `yaml:"address"` // peer's TCP host:port
}

// API is the local control API.
type API struct {
	Socket    string `yaml:"socket"`     // default /run/baton/baton.sock
	Listen    string `yaml:"listen"`     // optional TCP host:port, requires token_file
	TokenFile string `yaml:"token_file"` // bearer token for the TCP listener
	ReadOnly  bool   `yaml:"read_only"`  // refuse every command (switchover, maintenance, sync now)
	// TLS is the TCP listener's certificate; by default the cluster's
	// from baton keygen (link.cert_file and link.key_file).
	TLS TLSFiles `yaml:"tls"`
	// Insecure serves the TCP listener as plain HTTP (the token then
	// travels in clear).
	Insecure bool `yaml:"insecure"`
}

// TLSFiles name a server certificate and its key (PEM).
type TLSFiles struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Metrics is the Prometheus endpoint.
type Metrics struct {
	Listen    string `yaml:"listen"`     // default "127.0.0.1:9108"; "off" disables
	TokenFile string `yaml:"token_file"` // optional bearer token scrapers must send
}

// Link is the mutual-TLS peer link that session and configuration sync
// use (see `baton keygen`). It is needed only when one of them is on.
type Link struct {
	Listen   string `yaml:"listen"`    // TCP host:port, default ":5407"
	Address  string `yaml:"address"`   // the peer's host:port
	CAFile   string `yaml:"ca_file"`   // cluster CA bundle (PEM)
	CertFile string `yaml:"cert_file"` // this node's certificate (DNS name = node.name)
	KeyFile  string `yaml:"key_file"`  // this node's private key
}
