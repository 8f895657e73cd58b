package e2e

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
)

// TestInitToRunningPair goes from nothing to a running pair the way the
// README's quick start does: `baton init` writes the keys and both nodes'
// files, each node runs `baton run` on its file unchanged (only the state
// directory and API socket are moved per node, through the BATON_
// environment, because both lab nodes share one file system), and the
// client sees the probe answer on the active node only. Then the active
// is killed (the standby takes over) and restarted (it comes back as
// standby: the generated file has no preferred node).
func TestInitToRunningPair(t *testing.T) {
	labtest.RequireRoot(t)
	bin := batonBin(t)
	p, err := lab.NewPair(lab.RandomPrefix(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("tearing down lab: %v", err)
		}
	})
	dir := t.TempDir()
	out, err := exec.Command(bin, "init", "--cloud", "kvm", "--steer", "probe", "--nodes", "nva-a,nva-b",
		"--addresses", "hb="+lab.HBAddr(0)+","+lab.HBAddr(1), "--addresses", "front="+lab.FrontAddr(0)+","+lab.FrontAddr(1),
		"--dir", dir, "--etc", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("baton init: %v\n%s", err, out)
	}
	e := &env{t: t, pair: p, bin: bin}
	for i := range 2 {
		name := lab.ApplianceName(i)
		nodeDir := filepath.Join(dir, name+".run")
		if err := os.MkdirAll(filepath.Join(nodeDir, "state"), 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, name+".yaml")
		if b, err := exec.Command(bin, "validate", "--config", cfg).CombinedOutput(); err != nil {
			t.Fatalf("baton validate %s: %v\n%s", cfg, err, b)
		}
		e.nodes[i] = &lab.BatonNode{Index: i, Host: p.Appliances()[i], Dir: nodeDir, Config: cfg, LogPath: filepath.Join(nodeDir, "baton.log")}
	}
	e.hc[0] = e.client(p.Client)
	envOf := func(i int) []string {
		return []string{"BATON_NODE_STATE_DIR=" + filepath.Join(e.nodes[i].Dir, "state"), "BATON_API_SOCKET=" + filepath.Join(e.nodes[i].Dir, "baton.sock")}
	}
	start := func(i int) {
		t.Helper()
		n := e.nodes[i]
		proc, err := n.Host.Start("baton-"+lab.ApplianceName(i), []string{bin, "run", "--config", n.Config}, envOf(i), n.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		n.Proc = proc
		t.Cleanup(func() {
			if n.Running() {
				_ = n.Proc.Signal(syscall.SIGKILL)
				_ = n.Proc.Wait()
			}
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range e.nodes {
				b, _ := os.ReadFile(n.LogPath)
				lines := strings.Split(string(b), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("--- %s log (tail) ---\n%s", lab.ApplianceName(n.Index), strings.Join(lines, "\n"))
			}
		}
	})

	start(0)
	start(1)
	// A joint start: the higher priority init gave nva-a decides.
	e.roles("ACTIVE", "STANDBY", 20*time.Second)
	e.eventually("probe 200 on nva-a only", 10*time.Second, func() bool { return e.probe(0) == 200 && e.probe(1) == 503 })
	e.allPathsUp(10 * time.Second)
	st, err := e.status(1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range st.Peer.Paths {
		names = append(names, p.Name)
	}
	if !slices.Contains(names, "hb") || !slices.Contains(names, "front") {
		t.Errorf("nva-b's paths %v: want hb and front, the two init wrote", names)
	}

	e.kill(0, syscall.SIGKILL)
	e.eventually("nva-b takes over and answers the probe", 10*time.Second, func() bool { return e.role(1) == "ACTIVE" && e.probe(1) == 200 })

	start(0) // back: no preferred node, so it stays standby
	e.roles("STANDBY", "ACTIVE", 20*time.Second)
	if c := e.probe(0); c != 503 {
		t.Errorf("restarted nva-a answers the probe with %d, want 503", c)
	}
}
