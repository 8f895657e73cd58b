package lab

import (
	"bytes"
	"testing"
	"time"

	"github.com/batonha/baton/internal/config"
	"gopkg.in/yaml.v3"
)

func TestPairNodeConfigMatchesSchema(t *testing.T) {
	b := PairNodeConfig(NodeOptions{Index: 1, Priority: 100, Interval: 100 * time.Millisecond, Misses: 3, KeyFile: "/tmp/k", Dir: "/tmp/n b"})
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c config.Config
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decoding generated config strictly: %v\n%s", err, b)
	}
	if c.Node.Name != "nva-b" || c.Peer.Name != "nva-a" || c.Node.Priority != 100 {
		t.Errorf("names/priority: %+v %+v", c.Node, c.Peer.Name)
	}
	if c.Heartbeat.Interval != 100*time.Millisecond || c.Heartbeat.Misses != 3 || c.Heartbeat.KeyFile != "/tmp/k" {
		t.Errorf("heartbeat: %+v", c.Heartbeat)
	}
	if len(c.Peer.Paths) != 2 || c.Peer.Paths[0].Address != "10.100.1.11:5405" || c.Peer.Paths[1].Address != "10.100.9.1:5405" || c.Peer.Paths[1].Source != "10.100.9.2" {
		t.Errorf("paths: %+v", c.Peer.Paths)
	}
	if !c.Peer.Channel.Enabled || c.Peer.Channel.Address != "10.100.9.1:5406" {
		t.Errorf("channel: %+v", c.Peer.Channel)
	}
	if c.Probe.Mode != "http" || c.Probe.Listen != ":8444" || c.Metrics.Listen != "off" || c.Log.Format != "json" {
		t.Errorf("probe/metrics/log: %+v %+v %+v", c.Probe, c.Metrics, c.Log)
	}
	if c.API.Socket != "/tmp/n b/baton.sock" || c.Node.StateDir != "/tmp/n b/state" {
		t.Errorf("paths under dir: %q %q", c.API.Socket, c.Node.StateDir)
	}
}
