package cli

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// initArgs are the steering flags each cloud x steer combination needs.
func initArgs(cloud, steer string) []string {
	const sub = "11111111-2222-4333-8444-555555555555"
	nic := func(n string) string {
		return "/subscriptions/" + sub + "/resourceGroups/rg-nva/providers/Microsoft.Network/networkInterfaces/nic-" + n
	}
	switch cloud + "/" + steer {
	case "aws/routes":
		return []string{"--region", "eu-west-1", "--enis", "eni-0a2a2a2a2a2a2a2a2,eni-0b2b2b2b2b2b2b2b2", "--destinations", "0.0.0.0/0,192.168.0.0/16"}
	case "aws/vip":
		return []string{"--region", "eu-west-1", "--enis", "eni-0a2a2a2a2a2a2a2a2,eni-0b2b2b2b2b2b2b2b2", "--vip", "10.0.1.10"}
	case "azure/routes":
		return []string{"--subscription", sub, "--next-hops", "10.0.1.4,10.0.1.5", "--resource-group", "rg-spokes"}
	case "azure/vip":
		return []string{"--subscription", sub, "--nics", nic("a") + "," + nic("b"), "--vip", "10.0.1.10"}
	case "kvm/vip":
		return []string{"--vip", "192.0.2.10/24", "--interface", "eth1"}
	case "azure/bgp":
		return []string{"--bgp-peers", "10.1.1.4,10.1.1.5"}
	case "aws/bgp", "kvm/bgp":
		return []string{"--bgp-peers", "10.1.1.4,10.1.1.5", "--peer-asn", "65000", "--prefixes", "0.0.0.0/0,10.9.0.0/16"}
	}
	return nil
}

// TestInitEveryCombination runs `baton init` for every cloud x steer
// combination and passes each node's file through `baton validate`, the
// real command, and each policy file compares equal to `baton policy` on
// the same configuration.
func TestInitEveryCombination(t *testing.T) {
	for _, cloud := range []string{"azure", "aws", "kvm"} {
		for _, steer := range []string{"probe", "routes", "vip", "bgp"} {
			t.Run(cloud+"_"+steer, func(t *testing.T) {
				dir := t.TempDir()
				out := filepath.Join(dir, "out")
				args := append([]string{"init", "--cloud", cloud, "--steer", steer, "--nodes", "nva-a,nva-b",
					"--addresses", "10.0.0.4,10.0.0.5", "--addresses", "trust=10.0.2.4,10.0.2.5",
					"--dir", out, "--etc", out}, initArgs(cloud, steer)...)
				var stdout, stderr bytes.Buffer
				code := Run(args, &stdout, &stderr, nil)
				if cloud == "kvm" && steer == "routes" {
					// No route table API on KVM: refused, naming the flag.
					if code != exitUsage || !strings.Contains(stderr.String(), "--steer routes") {
						t.Fatalf("kvm routes: exit %d, stderr %q; want exit 2 naming --steer", code, stderr.String())
					}
					assertNotExist(t, out)
					return
				}
				if code != exitOK {
					t.Fatalf("baton init exited %d: %s", code, stderr.String())
				}
				wantPolicy := (cloud == "aws" || cloud == "azure") && (steer == "routes" || steer == "vip")
				for _, n := range []string{"nva-a", "nva-b"} {
					cfg := filepath.Join(out, n+".yaml")
					var vo, ve bytes.Buffer
					if code := Run([]string{"validate", "--config", cfg}, &vo, &ve, nil); code != exitOK || ve.Len() != 0 {
						b, _ := os.ReadFile(cfg)
						t.Fatalf("baton validate %s: exit %d, stderr %q\n%s", cfg, code, ve.String(), b)
					}
					if !strings.Contains(vo.String(), "peer "+map[string]string{"nva-a": "nva-b", "nva-b": "nva-a"}[n]+", 3 path(s)") {
						t.Errorf("validate says %q: want the peer and 3 paths (two heartbeat paths and the channel)", vo.String())
					}
					assertMode(t, cfg, 0o600)
					assertMode(t, filepath.Join(out, "pki", n+".key"), 0o600)
					pol := filepath.Join(out, "policy-"+n+".json")
					if !wantPolicy {
						assertNotExist(t, pol)
						continue
					}
					assertMode(t, pol, 0o644)
					got, err := os.ReadFile(pol)
					if err != nil {
						t.Fatal(err)
					}
					pargs := []string{"policy", "--cloud", cloud, "--config", cfg}
					if cloud == "azure" {
						pargs = append(pargs, "--name", "baton nva-a-nva-b")
					}
					var po, pe bytes.Buffer
					if code := Run(pargs, &po, &pe, nil); code != exitOK {
						t.Fatalf("baton policy on %s: exit %d: %s", cfg, code, pe.String())
					}
					if !bytes.Equal(got, po.Bytes()) {
						t.Errorf("%s differs from baton policy on %s:\n%s\nwant\n%s", pol, cfg, got, po.Bytes())
					}
				}
				for _, f := range []string{"ca.key", "heartbeat.key", "nva-a.key"} {
					assertMode(t, filepath.Join(out, "pki", f), 0o600)
				}
				assertMode(t, filepath.Join(out, "pki"), 0o700|fs.ModeDir)
				if !strings.Contains(stdout.String(), "keep "+filepath.Join(out, "pki", "ca.key")+" offline") {
					t.Errorf("output does not say to keep ca.key offline:\n%s", stdout.String())
				}
			})
		}
	}
}

// TestInitSteeringLands checks that the steering flags reach the files:
// each node points at itself and knows the peer.
func TestInitSteeringLands(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	args := append([]string{"init", "--cloud", "aws", "--steer", "routes", "--nodes", "fw1,fw2",
		"--addresses", "10.0.0.4,10.0.0.5", "--dir", out, "--etc", out}, initArgs("aws", "routes")...)
	var stdout, stderr bytes.Buffer
	if code := Run(args, &stdout, &stderr, nil); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "fw2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: fw2", "name: fw1", "local_eni: eni-0b2b2b2b2b2b2b2b2", "peer_eni: eni-0a2a2a2a2a2a2a2a2",
		`address: "10.0.0.4:5405"`, "source: 10.0.0.5", `"baton": "fw1-fw2"`, "192.168.0.0/16", "cert_file: " + filepath.Join(out, "pki", "fw2.crt")} {
		if !strings.Contains(string(b), want) {
			t.Errorf("fw2.yaml lacks %q:\n%s", want, b)
		}
	}
	p, err := os.ReadFile(filepath.Join(out, "policy-fw2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(p, []byte("ec2:ReplaceRoute")) || !bytes.Contains(p, []byte(`"ec2:ResourceTag/baton": "fw1-fw2"`)) {
		t.Errorf("policy lacks the tag-scoped route write:\n%s", p)
	}
}

// TestInitBadFlags: each bad input exits 2 with an error naming the flag
// and writes nothing.
func TestInitBadFlags(t *testing.T) {
	base := []string{"--cloud", "aws", "--steer", "routes", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--region", "eu-west-1", "--enis", "eni-0a2a2a2a2a2a2a2a2,eni-0b2b2b2b2b2b2b2b2"}
	with := func(flag, val string) []string {
		out := append([]string(nil), base...)
		for i := 0; i < len(out); i += 2 {
			if out[i] == flag {
				if val == "" {
					return append(out[:i:i], out[i+2:]...)
				}
				out[i+1] = val
				return out
			}
		}
		return append(out, flag, val)
	}
	cases := []struct {
		name, flag string
		args       []string
	}{
		{"no cloud", "--cloud", with("--cloud", "")},
		{"bad cloud", "--cloud", with("--cloud", "gcp")},
		{"bad steer", "--steer", with("--steer", "dns")},
		{"one node", "--nodes", with("--nodes", "a")},
		{"three nodes", "--nodes", with("--nodes", "a,b,c")},
		{"same node twice", "--nodes", with("--nodes", "a,a")},
		{"node name a path", "--nodes", with("--nodes", "../x,b")},
		{"no addresses", "--addresses", with("--addresses", "")},
		{"one address", "--addresses", with("--addresses", "10.0.0.4")},
		{"not an address", "--addresses", with("--addresses", "10.0.0.4,nva-b")},
		{"mixed families", "--addresses", with("--addresses", "10.0.0.4,fd00::5")},
		{"relative etc", "--etc", with("--etc", "etc/baton")},
		{"no region", "--region", with("--region", "")},
		{"no enis", "--enis", with("--enis", "")},
		{"bad eni", "--enis", with("--enis", "eni-1,eni-0b2b2b2b2b2b2b2b2")},
		{"bad destination", "--destinations", with("--destinations", "10.0.0.1/8")},
		{"bad tag", "--route-tag", with("--route-tag", "novalue")},
		{"flag of another steering", "--vip", with("--vip", "10.0.1.10")},
		{"kvm routes", "--steer routes", with("--cloud", "kvm")},
		{"vip without address", "--vip", []string{"--cloud", "kvm", "--steer", "vip", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--interface", "eth1"}},
		{"vip without interface", "--interface", []string{"--cloud", "kvm", "--steer", "vip", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--vip", "192.0.2.10/24"}},
		{"cloud vip a prefix", "--vip", []string{"--cloud", "aws", "--steer", "vip", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--region", "eu-west-1", "--enis", "eni-0a2a2a2a2a2a2a2a2,eni-0b2b2b2b2b2b2b2b2", "--vip", "10.0.1.0/24"}},
		{"azure bad subscription", "--subscription", []string{"--cloud", "azure", "--steer", "routes", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--subscription", "abc"}},
		{"azure nic elsewhere", "--nics", []string{"--cloud", "azure", "--steer", "vip", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--subscription", "11111111-2222-4333-8444-555555555555", "--vip", "10.0.1.10",
			"--nics", "/subscriptions/99999999-2222-4333-8444-555555555555/resourceGroups/r/providers/Microsoft.Network/networkInterfaces/a,/subscriptions/99999999-2222-4333-8444-555555555555/resourceGroups/r/providers/Microsoft.Network/networkInterfaces/b"}},
		{"bgp without peers", "--bgp-peers", []string{"--cloud", "azure", "--steer", "bgp", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5"}},
		{"bgp ipv6 peer", "--bgp-peers", []string{"--cloud", "azure", "--steer", "bgp", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--bgp-peers", "fd00::1"}},
		{"bgp aws without peer asn", "--peer-asn", []string{"--cloud", "aws", "--steer", "bgp", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--bgp-peers", "10.1.1.4"}},
		{"bgp bad asn", "--asn", []string{"--cloud", "azure", "--steer", "bgp", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--bgp-peers", "10.1.1.4", "--asn", "0"}},
		{"stray argument", "unexpected argument", append(append([]string(nil), base...), "extra")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			var stdout, stderr bytes.Buffer
			code := Run(append(append([]string{"init"}, tc.args...), "--dir", out), &stdout, &stderr, nil)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.flag) {
				t.Errorf("stderr %q does not name %s", stderr.String(), tc.flag)
			}
			assertNotExist(t, out)
		})
	}
}

// TestInitRefusesOverwrite: a second init into the same directory writes
// nothing and leaves the first keys; --force replaces them.
func TestInitRefusesOverwrite(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"init", "--cloud", "kvm", "--steer", "probe", "--nodes", "a,b", "--addresses", "10.0.0.4,10.0.0.5", "--dir", out, "--etc", out}
	var stdout, stderr bytes.Buffer
	if code := Run(args, &stdout, &stderr, nil); code != exitOK {
		t.Fatalf("first init: exit %d: %s", code, stderr.String())
	}
	key := filepath.Join(out, "pki", "heartbeat.key")
	first, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	// Every other file in the way: nothing is written, not even the missing key.
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := Run(args, &stdout, &stderr, nil); code != exitFailure || !strings.Contains(stderr.String(), "refusing to overwrite") {
		t.Fatalf("second init: exit %d, stderr %q; want 1 and a refusal", code, stderr.String())
	}
	assertNotExist(t, key)
	if err := os.WriteFile(key, first, 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := Run(append(args, "--force"), &stdout, &stderr, nil); code != exitOK {
		t.Fatalf("init --force: exit %d: %s", code, stderr.String())
	}
	again, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, again) {
		t.Error("--force kept the old heartbeat key")
	}
}

func TestHelpListsInit(t *testing.T) {
	var stdout, stderr bytes.Buffer
	Run([]string{"help"}, &stdout, &stderr, nil)
	if !strings.Contains(stderr.String(), "  init ") {
		t.Errorf("baton help does not list init:\n%s", stderr.String())
	}
	// The bash completion offers every command baton help lists.
	comp, err := os.ReadFile("../../deploy/completion/baton.bash")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`local commands="([^"]*)"`).FindSubmatch(comp)
	if m == nil {
		t.Fatal("bash completion has no command list")
	}
	offered := strings.Fields(string(m[1]))
	for _, c := range commands() {
		if !slices.Contains(offered, c.name) {
			t.Errorf("bash completion does not offer %q", c.name)
		}
	}
	stdout.Reset()
	if code := Run([]string{"help", "init"}, &stdout, &stderr, nil); code != exitOK || !strings.Contains(stdout.String(), "-steer") {
		t.Errorf("baton help init: exit %d:\n%s", code, stdout.String())
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModePerm | fs.ModeDir); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

func assertNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (err %v): nothing should have been written", path, err)
	}
}
