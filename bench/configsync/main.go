// Command configsync measures configuration sync between two nodes on
// this machine: two syncers in one process, each with its own directory,
// talking over the real mutual-TLS peer link on loopback, with real
// inotify, validate skipped and a no-op apply command.
//
// It prints:
//
//	configsync edits=200 p50_ms=X p99_ms=X lost=X
//	configsync catchup files=1000 ms=X
//
// The first line is the latency from a write on one node to the file in
// place on the other, over 200 sequential edits of files from 1 KiB to
// 1 MiB, alternating direction; lost counts edits that never arrived. The
// second is how long a node that was down takes to hold 1,000 files
// written on its peer meanwhile.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/batonha/baton/internal/configsync"
	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/pki"
)

var names = [2]string{"nva-a", "nva-b"}

type node struct {
	i      int
	dir    string
	state  string
	addr   string // this node's link address
	cancel context.CancelFunc
	done   chan struct{}
}

func main() {
	edits := flag.Int("edits", 200, "edits to time")
	files := flag.Int("files", 1000, "files for the catch-up measurement")
	verbose := flag.Bool("v", false, "log sync activity")
	flag.Parse()
	if err := run(*edits, *files, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "configsync bench:", err)
		os.Exit(1)
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func run(edits, nfiles int, verbose bool) error {
	root, err := os.MkdirTemp("", "baton-bench-configsync-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	certs := filepath.Join(root, "pki")
	if err := pki.Generate(certs, names[:], time.Hour, false); err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	if verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	var nodes [2]*node
	for i := range 2 {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		nodes[i] = &node{i: i, dir: filepath.Join(root, names[i], "etc"), state: filepath.Join(root, names[i], "state"), addr: addr}
	}
	start := func(n *node) error {
		peer := nodes[1-n.i]
		l, err := peerlink.New(peerlink.Config{Node: names[n.i], Peer: names[1-n.i], Listen: n.addr, Address: peer.addr,
			CAFile: filepath.Join(certs, "ca.crt"), CertFile: filepath.Join(certs, names[n.i]+".crt"),
			KeyFile: filepath.Join(certs, names[n.i]+".key"), Logger: log})
		if err != nil {
			return err
		}
		cfg := configsync.Config{}
		cfg.SetDefaults()
		cfg.Sets = []configsync.Set{{Name: "bench", Dir: n.dir, Files: []string{"*.conf"}, Apply: "true"}}
		s, err := configsync.New(configsync.Options{Config: cfg, Node: names[n.i], Peer: names[1-n.i], StateDir: n.state, Link: l, Logger: log})
		if err != nil {
			return err
		}
		if err := l.Listen(); err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		n.cancel, n.done = cancel, make(chan struct{})
		go func() {
			defer close(n.done)
			lctx, lcancel := context.WithCancel(ctx)
			ldone := make(chan struct{})
			go func() { defer close(ldone); _ = l.Run(lctx) }()
			_ = s.Run(ctx)
			lcancel()
			<-ldone
		}()
		return nil
	}
	stop := func(n *node) {
		n.cancel()
		<-n.done
	}
	for _, n := range nodes {
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return err
		}
		if err := start(n); err != nil {
			return err
		}
	}

	// Propagation latency.
	sizes := []int{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}
	var lat []time.Duration
	lost := 0
	for e := range edits {
		from, to := nodes[e%2], nodes[1-e%2]
		size := sizes[e%len(sizes)]
		name := fmt.Sprintf("f%02d.conf", e%10)
		data := make([]byte, size)
		_, _ = rand.Read(data)
		copy(data, fmt.Sprintf("edit %d\n", e))
		t0 := time.Now()
		if err := write(filepath.Join(from.dir, name), data); err != nil {
			return err
		}
		if arrived(filepath.Join(to.dir, name), data, 5*time.Second) {
			lat = append(lat, time.Since(t0))
		} else {
			lost++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("configsync edits=%d p50_ms=%.1f p99_ms=%.1f lost=%d\n", edits, pct(lat, 0.50), pct(lat, 0.99), lost)

	// Catch-up after a node was down.
	stop(nodes[1])
	contents := make([][]byte, nfiles)
	for i := range nfiles {
		contents[i] = []byte(fmt.Sprintf("file %d\n%s\n", i, bytes.Repeat([]byte("x"), 1000)))
		if err := write(filepath.Join(nodes[0].dir, fmt.Sprintf("c%04d.conf", i)), contents[i]); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := start(nodes[1]); err != nil {
		return err
	}
	deadline := t0.Add(120 * time.Second)
	next := 0
	for next < nfiles && time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(nodes[1].dir, fmt.Sprintf("c%04d.conf", next)))
		if err == nil && bytes.Equal(b, contents[next]) {
			next++
			continue
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	stop(nodes[0])
	stop(nodes[1])
	if next < nfiles {
		return fmt.Errorf("catch-up incomplete: %d of %d files after %v", next, nfiles, elapsed)
	}
	fmt.Printf("configsync catchup files=%d ms=%d\n", nfiles, elapsed.Milliseconds())
	return nil
}

// write replaces a file the way editors and config tools do: a temporary
// file renamed into place.
func write(p string, data []byte) error {
	tmp := p + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// arrived polls until p holds want.
func arrived(p string, want []byte, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, want) {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func pct(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	i = max(0, min(i, len(d)-1))
	return float64(d[i].Microseconds()) / 1000
}
