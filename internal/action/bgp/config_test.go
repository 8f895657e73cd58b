package bgp_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action/bgp"
	"github.com/batonha/baton/internal/config"
)

const base = `node:
  name: nva-1
heartbeat:
  key_file: %KEY%
peer:
  name: nva-2
  paths:
    - name: a
      address: 10.0.0.2:5405
`

func load(t *testing.T, section string) (*config.Config, error) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "baton.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(base, "%KEY%", key)+section), 0o644); err != nil {
		t.Fatal(err)
	}
	return config.Load(path, nil)
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := load(t, `bgp:
  asn: 65001
  prefixes: [0.0.0.0/0, 10.0.0.0/8]
  peers:
    - {address: 10.1.1.4, asn: 65515}
    - {address: 10.1.1.5, asn: 65515, multihop_ttl: 0, max_prefixes: 0}
  peerings:
    provider: azure
    azure: {subscription_id: s, resource_group: rg, route_server: rs, scale_set: nva}
`)
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.BGP
	if b.Mode != bgp.ModeActiveActive || b.Standby != bgp.StandbyPrepend || b.Prepend != 3 {
		t.Errorf("mode defaults: %+v", b)
	}
	if b.Timers.Hold != 9*time.Second || b.Timers.Keepalive != 3*time.Second || b.Timers.IdleHold != 3*time.Second {
		t.Errorf("timer defaults: %+v", b.Timers)
	}
	if b.Peers[0].Port != 179 || b.Peers[0].MultihopTTL != 2 || b.Peers[1].MultihopTTL != 0 ||
		b.Peers[0].MaxPrefixes != bgp.DefaultMaxPrefixes || b.Peers[1].MaxPrefixes != 0 {
		t.Errorf("peer defaults: %+v", b.Peers)
	}
	if b.Peerings.Interval != time.Minute || b.Peerings.NamePrefix != "baton-" || b.Peerings.Azure.MaxPeers != 8 {
		t.Errorf("peerings defaults: %+v", b.Peerings)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := load(t, `bgp:
  mode: both
  prefixes: [10.0.0.1/8, "2001:db8::/32", nonsense]
  standby: sulk
  prepend: 0
  peers:
    - {address: 10.1.1.4}
    - {address: 10.1.1.4, asn: 65515, port: 0, max_prefixes: -1}
  timers: {hold: 2500ms, keepalive: 5s}
  bfd: {enabled: true, multiplier: 0}
  peerings: {provider: gcp}
`)
	if err == nil {
		t.Fatal("loaded a broken section")
	}
	msg := err.Error()
	var errs config.Errors
	if e, ok := err.(config.Errors); ok {
		errs = e
		msg = ""
		for _, fe := range errs {
			msg += fe.Error() + "\n"
		}
	}
	for _, want := range []string{
		"bgp.mode", "bgp.asn", "bgp.prefixes[0]", "bgp.prefixes[1]", "bgp.prefixes[2]", "bgp.standby", "bgp.prepend",
		"bgp.peers[0].asn", "bgp.peers[1].address", "bgp.peers[1].port", "bgp.peers[1].max_prefixes", "bgp.timers.hold", "bgp.timers.keepalive",
		"bgp.bfd.multiplier", "bgp.peerings.provider",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("no error for %s in:\n%s", want, msg)
		}
	}
}

// The TCP-MD5 key file: read into the session, refused when others may
// write it or when it is empty or too long.
func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	cfg := bgp.Config{}
	cfg.SetDefaults()
	cfg.ASN = 65001
	cfg.RouterID = "10.1.2.4"
	p := bgp.Peer{Address: "10.1.1.4", ASN: 65515}
	p.SetDefaults()
	p.PasswordFile = filepath.Join(dir, "md5")
	cfg.Peers = []bgp.Peer{p}
	write := func(content string, mode os.FileMode) {
		if err := os.WriteFile(p.PasswordFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p.PasswordFile, mode); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	write("s3cret\n", 0o600)
	if _, err := bgp.NewSpeaker(cfg, log); err != nil {
		t.Fatalf("a 0600 key file: %v", err)
	}
	for _, c := range []struct {
		content string
		mode    os.FileMode
		want    string
	}{
		{"s3cret\n", 0o666, "writable by group or others"},
		{"\n", 0o600, "0-character key"},
		{strings.Repeat("k", 81), 0o600, "81-character key"},
	} {
		write(c.content, c.mode)
		if _, err := bgp.NewSpeaker(cfg, log); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "password_file") {
			t.Errorf("%q mode %#o: %v, want %q", c.content, c.mode, err, c.want)
		}
	}
}

// bgp.peerings.health peers only instances answering 200: a standby
// answers 503 but must keep its peering in active-standby mode, so health
// is refused there; bad values name their key.
func TestPeeringsHealthOnlyActiveActive(t *testing.T) {
	section := func(mode, health string) string {
		return "bgp:\n  mode: " + mode + "\n  asn: 65001\n  prefixes: [0.0.0.0/0]\n  peers: [{address: 10.1.1.4, asn: 65515}]\n" +
			"  peerings:\n    provider: azure\n    azure: {subscription_id: s, resource_group: r, route_server: rs, scale_set: v}\n    health: " + health + "\n"
	}
	if _, err := load(t, section("active-standby", "{port: 8444}")); err == nil || !strings.Contains(err.Error(), "bgp.peerings.health.port") {
		t.Errorf("health in active-standby: err %v, want one naming bgp.peerings.health.port", err)
	}
	cfg, err := load(t, section("active-active", "{port: 8444}"))
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.BGP.Peerings.Health; h.Port != 8444 || h.Path != "/" || h.Timeout != 2*time.Second {
		t.Errorf("health %+v: want port 8444 with the default path and timeout", h)
	}
	for _, bad := range []struct{ health, key string }{
		{"{port: 70000}", "bgp.peerings.health.port"},
		{"{port: 8444, timeout: 1ms}", "bgp.peerings.health.timeout"},
		{"{port: 8444, path: healthz}", "bgp.peerings.health.path"},
	} {
		if _, err := load(t, section("active-active", bad.health)); err == nil || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("health %s: err %v, want one naming %s", bad.health, err, bad.key)
		}
	}
}
