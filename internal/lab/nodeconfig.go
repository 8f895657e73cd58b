package lab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// NodeOptions describes one baton node of the pair topology for
// PairNodeConfig.
type NodeOptions struct {
	Index    int           // 0 = nva-a, 1 = nva-b
	Priority int           // 1..254
	Preempt  bool          // take the active role back when preferred
	Interval time.Duration // heartbeat interval
	Misses   int           // heartbeats missed before a path is down
	BackPath bool          // a third heartbeat path, over back
	KeyFile  string        // pre-shared heartbeat key
	Dir      string        // per-node directory: API socket and state dir live here
	// ProbeListen is the probe responder's address, default ":8444".
	ProbeListen string
	// MetricsListen is the Prometheus listener, default "off".
	MetricsListen string
	// LogLevel is debug|info|warn|error, default info.
	LogLevel string
}

// Ports used by baton nodes in the pair.
const (
	HeartbeatPort = 5405
	ChannelPort   = 5406
	ProbePort     = 8444
)

// ApplianceName is the host name of appliance i: "nva-a" or "nva-b".
func ApplianceName(i int) string { return [2]string{"nva-a", "nva-b"}[i] }

// PairNodeConfig renders a baton YAML configuration for appliance o.Index
// of the pair topology: heartbeats over front and hb (and back with
// o.BackPath), the TCP peer channel over hb, the HTTP probe on :8444, JSON logs.
func PairNodeConfig(o NodeOptions) []byte {
	if o.ProbeListen == "" {
		o.ProbeListen = ":" + strconv.Itoa(ProbePort)
	}
	if o.MetricsListen == "" {
		o.MetricsListen = "off"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	me, peer := o.Index, 1-o.Index
	var b bytes.Buffer
	fmt.Fprintf(&b, "node:\n  name: %q\n  priority: %d\n  preempt: %t\n  state_dir: %q\n",
		ApplianceName(me), o.Priority, o.Preempt, filepath.Join(o.Dir, "state"))
	fmt.Fprintf(&b, "log:\n  level: %q\n  format: json\n", o.LogLevel)
	fmt.Fprintf(&b, "heartbeat:\n  interval: %s\n  misses: %d\n  listen: \":%d\"\n  key_file: %q\n",
		o.Interval, o.Misses, HeartbeatPort, o.KeyFile)
	fmt.Fprintf(&b, "peer:\n  name: %q\n  paths:\n", ApplianceName(peer))
	fmt.Fprintf(&b, "    - name: front\n      address: \"%s:%d\"\n      source: %q\n", FrontAddr(peer), HeartbeatPort, FrontAddr(me))
	fmt.Fprintf(&b, "    - name: hb\n      address: \"%s:%d\"\n      source: %q\n", HBAddr(peer), HeartbeatPort, HBAddr(me))
	if o.BackPath {
		fmt.Fprintf(&b, "    - name: back\n      address: \"%s:%d\"\n      source: %q\n", BackAddr(peer), HeartbeatPort, BackAddr(me))
	}
	fmt.Fprintf(&b, "  channel:\n    enabled: true\n    listen: \":%d\"\n    address: \"%s:%d\"\n", ChannelPort, HBAddr(peer), ChannelPort)
	fmt.Fprintf(&b, "probe:\n  mode: http\n  listen: %q\n", o.ProbeListen)
	fmt.Fprintf(&b, "api:\n  socket: %q\n", filepath.Join(o.Dir, "baton.sock"))
	fmt.Fprintf(&b, "metrics:\n  listen: %q\n", o.MetricsListen)
	return b.Bytes()
}

// WriteKeyFile writes a fresh random heartbeat key (64 hex characters) to
// path, readable by its owner only.
func WriteKeyFile(path string) error {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return fmt.Errorf("generating heartbeat key: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k[:])), 0o600); err != nil {
		return fmt.Errorf("writing heartbeat key %s: %w", path, err)
	}
	return nil
}
