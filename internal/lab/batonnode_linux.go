package lab

import (
	"fmt"
	"os"
	"path/filepath"
)

// BatonNode is one baton daemon of the pair as the demo and the benchmark
// run it: its files and, while running, its process.
type BatonNode struct {
	Index   int
	Host    *Host
	Dir     string
	Config  string // path of its YAML configuration
	LogPath string // its stdout+stderr (JSON log)
	Proc    *Proc
}

// SetupBatonNodes writes the key and both nodes' configurations under dir
// (dir/nva-a, dir/nva-b) for the pair; opts gives priority and timing per
// node, Index, KeyFile and Dir are filled in.
func SetupBatonNodes(p *Pair, dir string, opts [2]NodeOptions) ([2]*BatonNode, error) {
	var nodes [2]*BatonNode
	key := filepath.Join(dir, "heartbeat.key")
	if err := WriteKeyFile(key); err != nil {
		return nodes, err
	}
	for i := range 2 {
		o := opts[i]
		o.Index, o.KeyFile = i, key
		o.Dir = filepath.Join(dir, ApplianceName(i))
		if err := os.MkdirAll(filepath.Join(o.Dir, "state"), 0o755); err != nil {
			return nodes, fmt.Errorf("creating node directory: %w", err)
		}
		cfg := filepath.Join(o.Dir, "baton.yaml")
		if err := os.WriteFile(cfg, PairNodeConfig(o), 0o644); err != nil {
			return nodes, fmt.Errorf("writing config for %s: %w", ApplianceName(i), err)
		}
		nodes[i] = &BatonNode{Index: i, Host: p.Appliances()[i], Dir: o.Dir, Config: cfg, LogPath: filepath.Join(o.Dir, "baton.log")}
	}
	return nodes, nil
}

// Start runs `batonBin run --config <Config> [args]` in the node's
// namespace.
func (n *BatonNode) Start(batonBin string, args ...string) error {
	p, err := n.Host.Start("baton-"+ApplianceName(n.Index), append([]string{batonBin, "run", "--config", n.Config}, args...), nil, n.LogPath)
	if err != nil {
		return err
	}
	n.Proc = p
	return nil
}

// Running reports whether the node's daemon is running.
func (n *BatonNode) Running() bool { return n.Proc != nil && !n.Proc.Exited() }
