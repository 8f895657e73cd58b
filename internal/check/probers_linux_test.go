package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitGone polls until pid no longer runs (gone or a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d survived the check timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIfaceProberLoopback(t *testing.T) {
	if err := mustProber(t, Config{Type: "interface", Interface: "lo"}).Probe(context.Background()); err != nil {
		t.Errorf("lo: %v", err)
	}
	err := mustProber(t, Config{Type: "interface", Interface: "baton-nx0"}).Probe(context.Background())
	if err == nil || !strings.Contains(err.Error(), "baton-nx0") {
		t.Errorf("missing interface: %v", err)
	}
}

func TestIfaceProberStates(t *testing.T) {
	root := t.TempDir()
	mk := func(name, oper, flags string) *IfaceProber {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "operstate"), []byte(oper+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if flags != "" {
			if err := os.WriteFile(filepath.Join(dir, "flags"), []byte(flags+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return &IfaceProber{Name: name, root: root}
	}
	cases := []struct {
		name, oper, flags string
		pass              bool
	}{
		{"eth0", "up", "", true},
		{"eth1", "down", "0x1003", false},
		{"eth2", "lowerlayerdown", "0x1003", false},
		{"eth3", "dormant", "", false},
		{"dummy0", "unknown", "0x83", true},  // dummy, admin up
		{"dummy1", "unknown", "0x82", false}, // dummy, admin down
		{"dummy2", "unknown", "", false},     // flags unreadable
		{"dummy3", "unknown", "zz", false},
	}
	for _, c := range cases {
		err := mk(c.name, c.oper, c.flags).Probe(context.Background())
		if (err == nil) != c.pass {
			t.Errorf("%s (operstate %s, flags %q): err = %v, want pass=%v", c.name, c.oper, c.flags, err, c.pass)
		}
	}
}

func TestExecProberTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The shell starts a grandchild that would hold the output pipe open.
	p := mustProber(t, Config{Type: "exec", Timeout: 2 * time.Second,
		Command: []string{"sh", "-c", `sleep 30 & echo $! > "$0"; echo started; wait`, pidFile}})
	err := p.Probe(context.Background())
	if err == nil || !strings.Contains(err.Error(), "killed after timeout 2s: started") {
		t.Fatalf("Probe = %v, want a timeout naming the last output line", err)
	}
	// The grandchild, which would otherwise keep running (and keep the
	// output pipe open), was killed with the group.
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}
