package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeBGPConfig(t *testing.T, section string) string {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "node: {name: nva-1}\nheartbeat: {key_file: " + key + "}\n" +
		"peer: {name: nva-2, paths: [{name: a, address: \"10.0.0.2:5405\"}]}\n" + section
	path := filepath.Join(dir, "baton.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRenderBird(t *testing.T) {
	path := writeBGPConfig(t, `bgp:
  asn: 65001
  prefixes: [0.0.0.0/0]
  peers: [{address: 10.1.1.4, asn: 65515}, {address: 10.1.1.5, asn: 65515}]
`)
	var out, errb bytes.Buffer
	if code := Run([]string{"render", "bird", "--config", path, "--gateway", "10.1.2.1", "--router-id", "10.1.2.5"}, &out, &errb, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"router id 10.1.2.5;", "route 0.0.0.0/0 via 10.1.2.1;", "neighbor 10.1.1.5 as 65515;", "local as 65001;", "multihop 2;"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if code := Run([]string{"render", "frr"}, &out, &errb, nil); code != exitUsage {
		t.Errorf("render frr: exit %d", code)
	}
	noBGP := writeBGPConfig(t, "")
	if code := Run([]string{"render", "bird", "--config", noBGP}, &out, &errb, nil); code != exitUsage {
		t.Errorf("no bgp section: exit %d", code)
	}
	if code := Run([]string{"peerings", "--config", noBGP, "--once"}, &out, &errb, nil); code != exitUsage {
		t.Errorf("peerings without a section: exit %d", code)
	}
}
