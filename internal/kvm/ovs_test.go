package kvm

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab/labtest"
)

// ovsdb is a private ovsdb-server with the Open vSwitch schema.
type ovsdb struct {
	t    *testing.T
	sock string
}

func startOVSDB(t *testing.T) *ovsdb {
	t.Helper()
	for _, tool := range []string{"ovsdb-server", "ovsdb-tool", "ovs-vsctl"} {
		labtest.RequireTool(t, tool)
	}
	schema := "/usr/share/openvswitch/vswitch.ovsschema"
	if _, err := os.Stat(schema); err != nil {
		labtest.Require(t, "Open vSwitch schema "+schema+" missing (scripts/deps.sh installs openvswitch-common)")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "conf.db")
	if out, err := exec.Command("ovsdb-tool", "create", db, schema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v: %s", err, out)
	}
	o := &ovsdb{t: t, sock: filepath.Join(dir, "db.sock")}
	cmd := exec.Command("ovsdb-server", db, "--remote=punix:"+o.sock,
		"--unixctl="+filepath.Join(dir, "ctl"), "--pidfile="+filepath.Join(dir, "pid"),
		"--log-file="+filepath.Join(dir, "log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ovsdb-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(o.sock); err == nil {
			if _, err := o.try("--no-wait", "init"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("ovsdb-server did not come up:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return o
}

func (o *ovsdb) try(args ...string) (string, error) {
	out, err := exec.Command("ovs-vsctl", append([]string{"--db=unix:" + o.sock, "--timeout=5"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (o *ovsdb) vsctl(args ...string) string {
	o.t.Helper()
	out, err := o.try(args...)
	if err != nil {
		o.t.Fatalf("ovs-vsctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// apply runs the plan's commands against the private database: no
// ovs-vswitchd runs, so every command gets --no-wait.
func (o *ovsdb) apply(cmds []string) {
	o.t.Helper()
	for _, c := range cmds {
		f := strings.Fields(c)
		if len(f) < 2 || f[0] != "ovs-vsctl" {
			o.t.Fatalf("not an ovs-vsctl command: %q", c)
		}
		o.vsctl(append([]string{"--no-wait"}, f[1:]...)...)
	}
}

func TestOVSCommandsApply(t *testing.T) {
	o := startOVSDB(t)
	p, err := LoadPair("testdata/two.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.DatapathType = "netdev" // no kernel module needed
	out, err := Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	o.apply(out.OVSCommands)
	o.apply(out.OVSCommands) // idempotent

	brs := strings.Fields(o.vsctl("list-br"))
	want := slices.Clone(out.Bridges)
	slices.Sort(want)
	if !slices.Equal(brs, want) {
		t.Fatalf("bridges %v, want %v", brs, want)
	}
	for _, br := range out.Bridges {
		if dp := o.vsctl("get", "bridge", br, "datapath_type"); dp != "netdev" {
			t.Errorf("%s datapath_type %s", br, dp)
		}
	}
	if got := strings.Fields(o.vsctl("list-ports", UplinkBridge)); !slices.Equal(got, []string{"eth1", "up-to-br1", "up-to-br2", "up-to-br3"}) {
		t.Errorf("uplink bridge ports %v", got)
	}
	if got := o.vsctl("get", "port", "eth1", "trunks"); got != "[101, 102, 103]" {
		t.Errorf("uplink trunks %s", got)
	}
	for i, v := range []string{"101", "102", "103"} {
		n := string(rune('1' + i))
		down, up := "br"+n+"-to-up", "up-to-br"+n
		if got := o.vsctl("list-ports", out.Bridges[i]); got != down {
			t.Errorf("%s ports %q, want %s", out.Bridges[i], got, down)
		}
		for _, pair := range [][2]string{{down, up}, {up, down}} {
			if got := o.vsctl("get", "interface", pair[0], "type"); got != "patch" {
				t.Errorf("%s type %s", pair[0], got)
			}
			if got := o.vsctl("get", "interface", pair[0], "options:peer"); got != `"`+pair[1]+`"` && got != pair[1] {
				t.Errorf("%s peer %s, want %s", pair[0], got, pair[1])
			}
			if got := o.vsctl("get", "port", pair[0], "trunks"); got != "["+v+"]" {
				t.Errorf("%s trunks %s, want [%s]", pair[0], got, v)
			}
		}
	}
	// What libvirt does when a VM starts: a port tagged as the XML says.
	x := out.Domains[p.VMs[0]][0]
	o.vsctl("--no-wait", "add-port", x.Bridge, "vnet0", "tag=101")
	if show := o.vsctl("show"); !strings.Contains(show, `Port vnet0`) || !strings.Contains(show, "tag: 101") {
		t.Errorf("ovs-vsctl show:\n%s", show)
	}
}

func TestOVSCommandsApplySingle(t *testing.T) {
	o := startOVSDB(t)
	p, err := LoadPair("testdata/single.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p.DatapathType = "netdev"
	out, err := Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	o.apply(out.OVSCommands)
	if got := strings.Fields(o.vsctl("list-br")); !slices.Equal(got, []string{"br1-internal", "br2-external", "br3-internal"}) {
		t.Errorf("bridges %v", got)
	}
	for _, br := range out.Bridges {
		if ports := o.vsctl("list-ports", br); ports != "" {
			t.Errorf("single server: %s has ports %q before any VM runs", br, ports)
		}
	}
}
