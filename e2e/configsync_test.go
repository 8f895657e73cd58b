package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/configsync"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/pki"
)

// nftRules is the synced ruleset as node i holds it: a per-node define
// line, and a rule on the node's own front address (substituted).
func nftRules(i int, ports ...int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "define NODE_ID = %d\n", i+1)
	b.WriteString("table inet batone2e\ndelete table inet batone2e\ntable inet batone2e {\n  chain input {\n    type filter hook input priority 0; policy accept;\n")
	for _, p := range ports {
		fmt.Fprintf(&b, "    ip daddr %s tcp dport %d meta mark set $NODE_ID counter accept\n", lab.FrontAddr(i), p)
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

type syncEnv struct {
	*env
	dirs [2]string
}

func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (package nftables)")
	}
	base := t.TempDir()
	certs := filepath.Join(base, "pki")
	if err := pki.Generate(certs, []string{"nva-a", "nva-b"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	var extra [2]string
	var dirs [2]string
	for i := range 2 {
		name, peer := lab.ApplianceName(i), lab.ApplianceName(1-i)
		dirs[i] = filepath.Join(base, name, "nft")
		extra[i] = fmt.Sprintf(`link:
  listen: ":5407"
  address: "%s:5407"
  ca_file: %q
  cert_file: %q
  key_file: %q
sync:
  interval: 2s
  debounce: 50ms
  substitute:
    %q: %q
  sets:
    - name: nftables
      dir: %q
      files: ["*.nft"]
      exclude: ["local-*.nft"]
      local_lines: ['^define NODE_ID ']
      validate: "nft -c -f {file}"
      apply: "nft -f {file}"
      timeout: 10s
`, lab.HBAddr(1-i), filepath.Join(certs, "ca.crt"), filepath.Join(certs, name+".crt"), filepath.Join(certs, name+".key"),
			lab.FrontAddr(i), lab.FrontAddr(1-i), dirs[i])
		_ = peer
	}
	e := &syncEnv{env: newEnv(t, [2]lab.NodeOptions{{}, {}}, extra), dirs: dirs}
	return e
}

func (e *syncEnv) file(i int, name string) string {
	b, err := os.ReadFile(filepath.Join(e.dirs[i], name))
	if err != nil {
		return ""
	}
	return string(b)
}

func (e *syncEnv) write(i int, name, content string) {
	e.t.Helper()
	if err := os.MkdirAll(e.dirs[i], 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dirs[i], name), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *syncEnv) ruleset(i int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := e.nodes[i].Host.Run(ctx, "nft", "list", "table", "inet", "batone2e")
	if err != nil {
		return "error: " + err.Error()
	}
	return string(out)
}

func (e *syncEnv) syncStatus(i int) (configsync.Status, error) {
	var st configsync.Status
	sock := filepath.Join(e.nodes[i].Dir, "baton.sock")
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://baton/v1/sync/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (e *syncEnv) cli(i int, args ...string) (string, error) {
	args = append(args, "--socket", filepath.Join(e.nodes[i].Dir, "baton.sock"))
	out, err := exec.Command(e.bin, args...).CombinedOutput()
	return string(out), err
}

// TestConfigSyncNftables runs two baton processes whose nftables file is
// synced: an edit on the standby is validated with nft -c, applied on the
// active and changes its ruleset; an invalid edit is refused and the old
// rules stay; per-node lines and addresses stay per node; edits made
// while a node is down catch up, and concurrent edits leave one winner
// and the loser beside it.
func TestConfigSyncNftables(t *testing.T) {
	e := newSyncEnv(t)
	for i := range 2 {
		e.write(i, "rules.nft", nftRules(i, 7001))
		e.write(i, "local-node.nft", fmt.Sprintf("# only on %s\n", lab.ApplianceName(i)))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := e.nodes[i].Host.Run(ctx, "nft", "-f", filepath.Join(e.dirs[i], "rules.nft"))
		cancel()
		if err != nil {
			t.Fatalf("loading the initial ruleset: %v\n%s", err, out)
		}
	}
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)
	e.eventually("both sync streams up and in step", 10*time.Second, func() bool {
		for i := range 2 {
			st, err := e.syncStatus(i)
			if err != nil || !st.Connected || len(st.Sets) != 1 || st.Sets[0].Pending != 0 || st.Sets[0].LastSync.IsZero() {
				return false
			}
		}
		return true
	})
	if st, _ := e.syncStatus(0); st.Sets[0].Conflicts != 0 || st.Sets[0].Files != 1 {
		t.Fatalf("equal files after substitution must merge without conflict: %+v", st.Sets[0])
	}

	// 1. An edit on the standby reaches the active, which validates and
	// applies it: its ruleset changes, with its own address.
	edited := time.Now()
	e.write(1, "rules.nft", nftRules(1, 7001, 7002))
	e.eventually("the standby's edit applied on the active", 10*time.Second, func() bool {
		return e.file(0, "rules.nft") == nftRules(0, 7001, 7002) &&
			strings.Contains(e.ruleset(0), fmt.Sprintf("ip daddr %s tcp dport 7002", lab.AFront))
	})
	t.Logf("edit on the standby applied on the active after %v", time.Since(edited))
	if e.file(1, "rules.nft") != nftRules(1, 7001, 7002) {
		t.Fatalf("the standby's own file changed: %q", e.file(1, "rules.nft"))
	}
	if got := e.file(0, "local-node.nft"); got != "# only on nva-a\n" {
		t.Fatalf("an excluded per-node file crossed: %q", got)
	}

	// 2. An invalid edit is refused on the receiver; the old rules stay.
	e.write(1, "rules.nft", nftRules(1, 7001, 7002)+"this is not nftables\n")
	e.eventually("the invalid edit refused and reported on both sides", 10*time.Second, func() bool {
		a, err1 := e.syncStatus(0)
		b, err2 := e.syncStatus(1)
		if err1 != nil || err2 != nil || a.Sets[0].Failures == 0 {
			return false
		}
		for _, f := range b.Sets[0].FileList {
			if f.Path == "rules.nft" && strings.Contains(f.PeerError, "validation failed") {
				return true
			}
		}
		return false
	})
	if e.file(0, "rules.nft") != nftRules(0, 7001, 7002) {
		t.Fatalf("the invalid file was put in place on the active: %q", e.file(0, "rules.nft"))
	}
	if rs := e.ruleset(0); !strings.Contains(rs, "tcp dport 7002") {
		t.Fatalf("the active's ruleset changed after a refused edit:\n%s", rs)
	}
	out, err := e.cli(1, "sync", "diff")
	if err == nil || !strings.Contains(out, "rules.nft: differs") || !strings.Contains(out, "this is not nftables") {
		t.Fatalf("baton sync diff on the standby: %v\n%s", err, out)
	}
	if out, err := e.cli(0, "sync", "status"); err != nil || !strings.Contains(out, "refused") {
		t.Fatalf("baton sync status on the active: %v\n%s", err, out)
	}

	// 3. A node down during edits catches up when it returns; a file edited
	// on both sides meanwhile is a conflict with one winner.
	e.write(1, "rules.nft", nftRules(1, 7001, 7003))
	e.eventually("the fixed edit applied", 10*time.Second, func() bool {
		return e.file(0, "rules.nft") == nftRules(0, 7001, 7003)
	})
	e.kill(1, syscall.SIGTERM)
	e.write(0, "rules.nft", nftRules(0, 7001, 7004))
	e.write(0, "new.nft", "table inet batone2e_new {\n}\n")
	e.write(1, "rules.nft", nftRules(1, 7001, 7005))
	e.start(1)
	// Both nodes converge on one of the two edits (the later write; two
	// writes a few milliseconds apart may carry the same file timestamp,
	// so the test accepts either) and keep the other beside the file.
	winner := 0
	e.eventually("the returning node caught up and the conflict resolved", 15*time.Second, func() bool {
		if e.file(1, "new.nft") != "table inet batone2e_new {\n}\n" {
			return false
		}
		for w, port := range []int{7004, 7005} {
			if e.file(0, "rules.nft") == nftRules(0, 7001, port) && e.file(1, "rules.nft") == nftRules(1, 7001, port) {
				winner = w
				return true
			}
		}
		return false
	})
	loser := 1 - winner
	loserPort := []int{7004, 7005}[loser]
	var copies [2][]string
	for i := range 2 {
		copies[i], _ = filepath.Glob(filepath.Join(e.dirs[i], "rules.nft.baton-conflict-"+lab.ApplianceName(loser)+"-*"))
		for _, cp := range copies[i] {
			if b, _ := os.ReadFile(cp); string(b) != nftRules(i, 7001, loserPort) {
				t.Fatalf("conflict copy %s holds %q", cp, b)
			}
		}
	}
	if len(copies[0])+len(copies[1]) == 0 {
		t.Fatalf("the losing edit (%s's) was not kept beside the file", lab.ApplianceName(loser))
	}
	t.Logf("%s's edit won; conflict copies: %v", lab.ApplianceName(winner), copies)
	// The node whose edit lost received the winner and applied it.
	e.eventually("the winner applied where it was received", 5*time.Second, func() bool {
		return strings.Contains(e.ruleset(loser), fmt.Sprintf("tcp dport %d", []int{7004, 7005}[winner]))
	})
	e.eventually("the conflict reported", 5*time.Second, func() bool {
		a, _ := e.syncStatus(0)
		b, _ := e.syncStatus(1)
		return len(a.Sets) == 1 && len(b.Sets) == 1 && a.Sets[0].Conflicts+b.Sets[0].Conflicts > 0
	})
	if out, err := e.cli(0, "sync", "now"); err != nil || !strings.Contains(out, "connected") {
		t.Fatalf("baton sync now: %v\n%s", err, out)
	}
}
