package config

import (
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/check"
)

const minimalYAML = `node:
  name: a
heartbeat:
  key_file: /etc/baton/hb.key
peer:
  name: b
  paths:
    - name: hb
      address: "10.9.0.2:5405"
`

// minimal parses minimalYAML, failing the test if it does not load.
func minimal(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte(minimalYAML), "min.yaml", nil)
	if err != nil {
		t.Fatalf("minimal config does not load: %v", err)
	}
	return c
}

func TestMinimalGetsDefaults(t *testing.T) {
	c := minimal(t)
	want := Default()
	want.Node.Name = "a"
	want.Heartbeat.KeyFile = "/etc/baton/hb.key"
	want.Peer.Name = "b"
	want.Peer.Paths = []Path{{Name: "hb", Address: "10.9.0.2:5405"}}
	if got := *c; !equalConfig(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"node.priority", d.Node.Priority, 100},
		{"node.preempt", d.Node.Preempt, false},
		{"node.preempt_delay", d.Node.PreemptDelay, time.Duration(0)},
		{"node.state_dir", d.Node.StateDir, "/var/lib/baton"},
		{"log.level", d.Log.Level, "info"},
		{"log.format", d.Log.Format, "text"},
		{"heartbeat.interval", d.Heartbeat.Interval, time.Second},
		{"heartbeat.misses", d.Heartbeat.Misses, 3},
		{"heartbeat.listen", d.Heartbeat.Listen, ":5405"},
		{"heartbeat.replay_window", d.Heartbeat.ReplayWindow, 1024},
		{"peer.channel.listen", d.Peer.Channel.Listen, ":5406"},
		{"peer.channel.enabled", d.Peer.Channel.Enabled, false},
		{"probe.mode", d.Probe.Mode, "http"},
		{"probe.listen", d.Probe.Listen, ":8444"},
		{"probe.unconnected_after", d.Probe.UnconnectedAfter, 30 * time.Second},
		{"hooks.timeout", d.Hooks.Timeout, 30 * time.Second},
		{"api.socket", d.API.Socket, "/run/baton/baton.sock"},
		{"metrics.listen", d.Metrics.Listen, "127.0.0.1:9108"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestListElementDefaults(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(minimalYAML, "  key_file: /etc/baton/hb.key\n",
		"  key_file: /etc/baton/hb.key\n  misses: 5\n", 1)+`  checks:
    - name: ping
      type: icmp
      target: 10.9.0.2
checks:
  - name: up
    type: interface
    interface: eth0
`), "x.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	pc := c.Peer.Checks[0]
	if pc.Interval != time.Second || pc.Timeout != 500*time.Millisecond || pc.Misses != 5 {
		t.Errorf("peer check defaults = interval %s timeout %s misses %d, want 1s 500ms 5 (heartbeat.misses)",
			pc.Interval, pc.Timeout, pc.Misses)
	}
	ch := c.Checks[0]
	if ch.Interval != time.Second || ch.Timeout != time.Second || ch.Rise != 2 || ch.Fall != 3 {
		t.Errorf("check defaults = %+v, want interval 1s timeout 1s rise 2 fall 3", ch)
	}
}

func TestChannelEnabledDefault(t *testing.T) {
	cases := []struct {
		name    string
		channel string
		want    bool
	}{
		{"no address", "", false},
		{"address set", "  channel:\n    address: \"10.9.0.2:5406\"\n", true},
		{"address set, explicitly off", "  channel:\n    address: \"10.9.0.2:5406\"\n    enabled: false\n", false},
		{"enabled null keeps default", "  channel:\n    address: \"10.9.0.2:5406\"\n    enabled:\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(minimalYAML+tc.channel), "x.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.Peer.Channel.Enabled != tc.want {
				t.Errorf("enabled = %v, want %v", c.Peer.Channel.Enabled, tc.want)
			}
		})
	}
}

// TestRules changes one thing in a valid configuration and expects exactly
// one error, at the given path, whose message contains the given text.
func TestRules(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *Config)
		path   string
		msg    string
	}{
		{"node name required", func(c *Config) { c.Node.Name = "" }, "node.name", "required"},
		{"node name charset", func(c *Config) { c.Node.Name = "nva a" }, "node.name", "not a valid name"},
		{"node name length", func(c *Config) { c.Node.Name = strings.Repeat("a", 64) }, "node.name", "not a valid name"},
		{"node name 63 ok", func(c *Config) { c.Node.Name = strings.Repeat("a", 63) }, "", ""},
		{"priority low", func(c *Config) { c.Node.Priority = 0 }, "node.priority", "between 1 and 254 (got 0)"},
		{"priority high", func(c *Config) { c.Node.Priority = 255 }, "node.priority", "between 1 and 254 (got 255)"},
		{"priority edge", func(c *Config) { c.Node.Priority = 254 }, "", ""},
		{"preempt delay negative", func(c *Config) { c.Node.PreemptDelay = -time.Second }, "node.preempt_delay", "negative"},
		{"state dir relative", func(c *Config) { c.Node.StateDir = "var/lib" }, "node.state_dir", "absolute"},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level", `one of debug, info, warn, error (got "trace")`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format", "one of text, json"},
		{"interval too short", func(c *Config) { c.Heartbeat.Interval = 5 * time.Millisecond }, "heartbeat.interval", "must be at least 10ms (got 5ms)"},
		{"interval edge", func(c *Config) { c.Heartbeat.Interval = 10 * time.Millisecond }, "", ""},
		{"misses zero", func(c *Config) { c.Heartbeat.Misses = 0 }, "heartbeat.misses", "at least 1"},
		{"replay low", func(c *Config) { c.Heartbeat.ReplayWindow = 63 }, "heartbeat.replay_window", "between 64 and 4096"},
		{"replay high", func(c *Config) { c.Heartbeat.ReplayWindow = 4097 }, "heartbeat.replay_window", "between 64 and 4096"},
		{"key file required", func(c *Config) { c.Heartbeat.KeyFile = "" }, "heartbeat.key_file", "required"},
		{"key file relative", func(c *Config) { c.Heartbeat.KeyFile = "hb.key" }, "heartbeat.key_file", "absolute path"},
		{"listen no port", func(c *Config) { c.Heartbeat.Listen = "0.0.0.0" }, "heartbeat.listen", "not host:port"},
		{"listen bad port", func(c *Config) { c.Heartbeat.Listen = ":70000" }, "heartbeat.listen", "out of range"},
		{"listen named port", func(c *Config) { c.Heartbeat.Listen = ":http" }, "heartbeat.listen", "not a number"},
		{"listen port 0 ok", func(c *Config) { c.Heartbeat.Listen = "127.0.0.1:0" }, "", ""},
		{"listen ipv6 ok", func(c *Config) { c.Heartbeat.Listen = "[::1]:5405" }, "", ""},
		{"listen bad host", func(c *Config) { c.Heartbeat.Listen = "bad_host!:5405" }, "heartbeat.listen", "neither an IP"},
		{"peer name required", func(c *Config) { c.Peer.Name = "" }, "peer.name", "required"},
		{"peer name same as node", func(c *Config) { c.Peer.Name = "a" }, "peer.name", "must differ from node.name"},
		{"no paths", func(c *Config) { c.Peer.Paths = nil }, "peer.paths", "at least one path"},
		{"path name required", func(c *Config) { c.Peer.Paths[0].Name = "" }, "peer.paths[0].name", "required"},
		{"path name upper", func(c *Config) { c.Peer.Paths[0].Name = "HB" }, "peer.paths[0].name", "lower-case"},
		{"path name long", func(c *Config) { c.Peer.Paths[0].Name = strings.Repeat("x", 33) }, "peer.paths[0].name", "not a valid name"},
		{"path address required", func(c *Config) { c.Peer.Paths[0].Address = "" }, "peer.paths[0].address", "required"},
		{"path address no host", func(c *Config) { c.Peer.Paths[0].Address = ":5405" }, "peer.paths[0].address", "no host"},
		{"path address port 0", func(c *Config) { c.Peer.Paths[0].Address = "10.0.0.1:0" }, "peer.paths[0].address", "out of range 1-65535"},
		{"path address bare v6", func(c *Config) { c.Peer.Paths[0].Address = "fe80::1:5405" }, "peer.paths[0].address", "not host:port"},
		{"path address hostname ok", func(c *Config) { c.Peer.Paths[0].Address = "nva-b.internal:5405" }, "", ""},
		{"path source not ip", func(c *Config) { c.Peer.Paths[0].Source = "eth0" }, "peer.paths[0].source", "not an IP"},
		{"path names unique", func(c *Config) {
			c.Peer.Paths = append(c.Peer.Paths, Path{Name: "hb", Address: "10.9.1.2:5405"})
		}, "peer.paths[1].name", `"hb" is already the name of peer.paths[0]`},
		{"peer check name clashes with path", func(c *Config) {
			c.Peer.Checks = []PeerCheck{peerCheck("hb", "icmp", "10.9.0.2")}
		}, "peer.checks[0].name", `already the name of peer.paths[0]`},
		{"peer check type", func(c *Config) { c.Peer.Checks = []PeerCheck{peerCheck("p", "udp", "10.9.0.2")} }, "peer.checks[0].type", "one of icmp, tcp, http"},
		{"peer check target required", func(c *Config) { c.Peer.Checks = []PeerCheck{peerCheck("p", "icmp", "")} }, "peer.checks[0].target", "required"},
		{"icmp target not ip", func(c *Config) { c.Peer.Checks = []PeerCheck{peerCheck("p", "icmp", "10.9.0.2:80")} }, "peer.checks[0].target", "must be an IP address"},
		{"icmp target ok", func(c *Config) { c.Peer.Checks = []PeerCheck{peerCheck("p", "icmp", "fd00::2")} }, "", ""},
		{"tcp target no port", func(c *Config) { c.Peer.Checks = []PeerCheck{peerCheck("p", "tcp", "10.9.0.2")} }, "peer.checks[0].target", "not host:port"},
		{"tcp target ok", func(c *Config) { c.Peer.Checks = []PeerCheck{peerCheck("p", "tcp", "10.9.0.2:22")} }, "", ""},
		{"http target scheme", func(c *Config) { c.Peer.Checks = []PeerCheck{peerCheck("p", "http", "ftp://10.9.0.2/")} }, "peer.checks[0].target", "http:// or https://"},
		{"http target no host", func(c *Config) { c.Peer.Checks = []PeerCheck{peerCheck("p", "http", "http:///x")} }, "peer.checks[0].target", "no host"},
		{"http target ok", func(c *Config) { c.Peer.Checks = []PeerCheck{peerCheck("p", "http", "https://10.9.0.2:8444/health")} }, "", ""},
		{"insecure needs https", func(c *Config) {
			pc := peerCheck("p", "http", "http://10.9.0.2/")
			pc.Insecure = true
			c.Peer.Checks = []PeerCheck{pc}
		}, "peer.checks[0].insecure", "https"},
		{"peer check timeout not below interval", func(c *Config) {
			pc := peerCheck("p", "icmp", "10.9.0.2")
			pc.Timeout = pc.Interval
			c.Peer.Checks = []PeerCheck{pc}
		}, "peer.checks[0].timeout", "less than interval 1s (got 1s)"},
		{"peer check misses", func(c *Config) {
			pc := peerCheck("p", "icmp", "10.9.0.2")
			pc.Misses = 0
			c.Peer.Checks = []PeerCheck{pc}
		}, "peer.checks[0].misses", "at least 1"},
		{"channel enabled without address", func(c *Config) { c.Peer.Channel.Enabled = true }, "peer.channel.address", "required when the channel is enabled"},
		{"channel address bad", func(c *Config) {
			c.Peer.Channel.Enabled = true
			c.Peer.Channel.Address = "10.9.0.2"
		}, "peer.channel.address", "not host:port"},
		{"channel listen bad", func(c *Config) { c.Peer.Channel.Listen = "x" }, "peer.channel.listen", "not host:port"},
		{"check name required", func(c *Config) {
			c.Checks = []check.Config{localCheck("", "interface", func(ch *check.Config) { ch.Interface = "eth0" })}
		}, "checks[0].name", "required"},
		{"check names unique", func(c *Config) {
			c.Checks = []check.Config{
				localCheck("up", "interface", func(ch *check.Config) { ch.Interface = "eth0" }),
				localCheck("up", "interface", func(ch *check.Config) { ch.Interface = "eth1" }),
			}
		}, "checks[1].name", `"up" is already the name of checks[0]`},
		{"check type", func(c *Config) { c.Checks = []check.Config{localCheck("x", "ping", nil)} }, "checks[0].type", "one of exec, interface, tcp, http"},
		{"exec needs command", func(c *Config) { c.Checks = []check.Config{localCheck("x", "exec", nil)} }, "checks[0].command", "required for exec checks"},
		{"exec empty argv0", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "exec", func(ch *check.Config) { ch.Command = []string{""} })}
		}, "checks[0].command", "required"},
		{"interface needs interface", func(c *Config) { c.Checks = []check.Config{localCheck("x", "interface", nil)} }, "checks[0].interface", "required"},
		{"interface name too long", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "interface", func(ch *check.Config) { ch.Interface = "averyverylongname0" })}
		}, "checks[0].interface", "not a valid interface name"},
		{"tcp check needs target", func(c *Config) { c.Checks = []check.Config{localCheck("x", "tcp", nil)} }, "checks[0].target", "required"},
		{"tcp check bad target", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "tcp", func(ch *check.Config) { ch.Target = "localhost" })}
		}, "checks[0].target", "not host:port"},
		{"http check bad target", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "http", func(ch *check.Config) { ch.Target = "localhost:80" })}
		}, "checks[0].target", "http:// or https://"},
		{"http check ok", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "http", func(ch *check.Config) { ch.Target = "http://127.0.0.1:8080/healthz" })}
		}, "", ""},
		{"command on tcp check", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "tcp", func(ch *check.Config) { ch.Target = "127.0.0.1:80"; ch.Command = []string{"/bin/true"} })}
		}, "checks[0].command", "applies only to exec checks"},
		{"target on exec check", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "exec", func(ch *check.Config) { ch.Command = []string{"/bin/true"}; ch.Target = "127.0.0.1:80" })}
		}, "checks[0].target", "applies only to tcp and http"},
		{"check rise", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "interface", func(ch *check.Config) { ch.Interface = "eth0"; ch.Rise = 0 })}
		}, "checks[0].rise", "at least 1 (got 0)"},
		{"check fall", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "interface", func(ch *check.Config) { ch.Interface = "eth0"; ch.Fall = -1 })}
		}, "checks[0].fall", "at least 1 (got -1)"},
		{"check timeout zero", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "interface", func(ch *check.Config) { ch.Interface = "eth0"; ch.Timeout = 0 })}
		}, "checks[0].timeout", "greater than 0"},
		{"check timeout above interval", func(c *Config) {
			c.Checks = []check.Config{localCheck("x", "interface", func(ch *check.Config) { ch.Interface = "eth0"; ch.Timeout = 2 * time.Second })}
		}, "checks[0].timeout", "must not exceed interval"},
		{"probe mode", func(c *Config) { c.Probe.Mode = "udp" }, "probe.mode", "one of http, tcp, off"},
		{"probe listen bad", func(c *Config) { c.Probe.Listen = "8444" }, "probe.listen", "not host:port"},
		{"probe off ignores listen", func(c *Config) { c.Probe.Mode = "off"; c.Probe.Listen = "" }, "", ""},
		{"unconnected after", func(c *Config) { c.Probe.UnconnectedAfter = 0 }, "probe.unconnected_after", "greater than 0"},
		{"hook relative", func(c *Config) { c.Hooks.Fault = []string{"/ok.sh", "notify.sh"} }, "hooks.fault[1]", "absolute path"},
		{"hook timeout", func(c *Config) { c.Hooks.Timeout = 0 }, "hooks.timeout", "greater than 0"},
		{"api socket relative", func(c *Config) { c.API.Socket = "baton.sock" }, "api.socket", "absolute path"},
		{"api listen needs token", func(c *Config) { c.API.Listen = "127.0.0.1:8446"; c.API.Insecure = true }, "api.token_file", "required when api.listen is set"},
		{"api listen with token and insecure ok", func(c *Config) {
			c.API.Listen = "127.0.0.1:8446"
			c.API.TokenFile = "/etc/baton/token"
			c.API.Insecure = true
		}, "", ""},
		{"api listen needs a certificate", func(c *Config) { c.API.Listen = "127.0.0.1:8446"; c.API.TokenFile = "/etc/baton/token" }, "api.tls.cert_file", "required when api.listen is set"},
		{"api listen with certificate ok", func(c *Config) {
			c.API.Listen = "127.0.0.1:8446"
			c.API.TokenFile = "/etc/baton/token"
			c.API.TLS = TLSFiles{CertFile: "/etc/baton/api.crt", KeyFile: "/etc/baton/api.key"}
		}, "", ""},
		{"api token relative", func(c *Config) { c.API.TokenFile = "token" }, "api.token_file", "absolute path"},
		{"metrics off", func(c *Config) { c.Metrics.Listen = "off" }, "", ""},
		{"metrics bad", func(c *Config) { c.Metrics.Listen = "on" }, "metrics.listen", "not host:port"},
		{"metrics empty", func(c *Config) { c.Metrics.Listen = "" }, "metrics.listen", "required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := minimal(t)
			tc.mutate(c)
			errs := c.Validate()
			if tc.path == "" {
				if len(errs) != 0 {
					t.Fatalf("want no errors, got:\n%v", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("want 1 error at %s, got %d:\n%v", tc.path, len(errs), errs)
			}
			e := errs[0]
			if e.Path != tc.path || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got %q at %s, want %q at %s", e.Msg, e.Path, tc.msg, tc.path)
			}
			if e.Source != "" || e.Line != 0 {
				t.Errorf("a Config built in code has no location, got %s:%d", e.Source, e.Line)
			}
		})
	}
}

func peerCheck(name, typ, target string) PeerCheck {
	pc := PeerCheck{Name: name, Type: typ, Target: target}
	pc.applyDefaults()
	pc.Misses = 3
	return pc
}

func localCheck(name, typ string, set func(*check.Config)) check.Config {
	c := check.Config{Name: name, Type: typ}
	c.SetDefaults()
	if set != nil {
		set(&c)
	}
	return c
}

func TestValidateCodeBuiltDefaultsReportsRequired(t *testing.T) {
	c := Default()
	errs := c.Validate()
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	want := []string{"node.name", "heartbeat.key_file", "peer.name", "peer.paths"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("errors at %v, want %v\n%v", paths, want, errs)
	}
	if !strings.HasPrefix(errs.Error(), "node.name: required\n") {
		t.Errorf("Error() = %q, want it to start with %q", errs.Error(), "node.name: required\n")
	}
}
