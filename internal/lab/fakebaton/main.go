// Command fakebaton is a stand-in for the baton daemon used to test the lab's
// demo engine and the failover benchmark before (or without) the real
// daemon: `fakebaton run --config FILE` reads a baton configuration, sends
// plain UDP heartbeats on every peer path, elects the higher priority node,
// answers the HTTP probe with 200 only while active and logs
// `msg="role changed"` like baton does. It has no security, no channel and
// no checks: never use it outside the lab.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/config"
	"gopkg.in/yaml.v3"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: fakebaton run --config FILE")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	path := fs.String("config", "", "configuration file")
	_ = fs.Parse(os.Args[2:])
	if err := run(*path); err != nil {
		fmt.Fprintln(os.Stderr, "fakebaton:", err)
		os.Exit(1)
	}
}

type beat struct {
	Name     string `json:"name"`
	Priority int    `json:"priority"`
	Active   bool   `json:"active"`
}

type node struct {
	cfg  config.Config
	log  *slog.Logger
	conn *net.UDPConn

	mu        sync.Mutex
	role      string
	term      uint64
	lastHeard time.Time
	peer      beat
}

func run(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	var cfg config.Config
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("parsing config %s: %w", path, err)
	}
	if cfg.Heartbeat.Interval <= 0 {
		cfg.Heartbeat.Interval = time.Second
	}
	if cfg.Heartbeat.Misses <= 0 {
		cfg.Heartbeat.Misses = 3
	}
	n := &node{
		cfg:  cfg,
		log:  slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("component", "fakebaton"),
		role: "INIT",
		// Wait a full detection time for the peer before claiming ACTIVE.
		lastHeard: time.Now(),
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Heartbeat.Listen)
	if err != nil {
		return fmt.Errorf("resolving heartbeat listen %q: %w", cfg.Heartbeat.Listen, err)
	}
	if n.conn, err = net.ListenUDP("udp", ua); err != nil {
		return fmt.Errorf("binding heartbeat socket %s: %w", cfg.Heartbeat.Listen, err)
	}
	ln, err := net.Listen("tcp", cfg.Probe.Listen)
	if err != nil {
		return fmt.Errorf("binding probe %s: %w", cfg.Probe.Listen, err)
	}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			n.mu.Lock()
			active := n.role == "ACTIVE"
			n.mu.Unlock()
			if active {
				w.WriteHeader(http.StatusOK)
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	n.log.Info("started", "node", cfg.Node.Name, "priority", cfg.Node.Priority)
	n.setRole("STANDBY", "started")
	go n.receive()
	t := time.NewTicker(cfg.Heartbeat.Interval)
	defer t.Stop()
	for {
		n.send()
		n.decide()
		select {
		case <-ctx.Done():
			n.setRole("STANDBY", "shutdown")
			return nil
		case <-t.C:
		}
	}
}

func (n *node) send() {
	n.mu.Lock()
	b, _ := json.Marshal(beat{Name: n.cfg.Node.Name, Priority: n.cfg.Node.Priority, Active: n.role == "ACTIVE"})
	n.mu.Unlock()
	for _, p := range n.cfg.Peer.Paths {
		if ua, err := net.ResolveUDPAddr("udp", p.Address); err == nil {
			_, _ = n.conn.WriteToUDP(b, ua)
		}
	}
}

func (n *node) receive() {
	buf := make([]byte, 512)
	for {
		k, _, err := n.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var b beat
		if json.Unmarshal(buf[:k], &b) != nil || b.Name != n.cfg.Peer.Name {
			continue
		}
		n.mu.Lock()
		n.lastHeard, n.peer = time.Now(), b
		n.mu.Unlock()
		n.decide()
	}
}

func (n *node) decide() {
	n.mu.Lock()
	lost := time.Since(n.lastHeard) > time.Duration(n.cfg.Heartbeat.Misses)*n.cfg.Heartbeat.Interval
	peer, role := n.peer, n.role
	n.mu.Unlock()
	me := n.cfg.Node.Priority
	switch {
	case lost && role != "ACTIVE":
		n.setRole("ACTIVE", "peer lost")
	case lost, peer.Name == "":
		// nothing heard yet: wait for the peer or for the detection time
	case peer.Active && role == "ACTIVE" && peer.Priority > me:
		n.setRole("STANDBY", "peer active with higher priority")
	case !peer.Active && role != "ACTIVE" && me > peer.Priority:
		n.setRole("ACTIVE", "preferred")
	}
}

func (n *node) setRole(to, reason string) {
	n.mu.Lock()
	from := n.role
	if from == to {
		n.mu.Unlock()
		return
	}
	n.role = to
	n.term++
	term := n.term
	n.mu.Unlock()
	n.log.Info("role changed", "from", from, "to", to, "reason", reason, "term", term)
}
