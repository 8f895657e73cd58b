package render

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action/bgp"
	"github.com/batonha/baton/internal/lab/labtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func section(mode string) bgp.Config {
	var c bgp.Config
	c.SetDefaults()
	c.Mode = mode
	c.ASN = 65001
	c.Prefixes = []string{"0.0.0.0/0", "10.1.0.0/16"}
	for _, a := range []string{"10.1.1.4", "10.1.1.5"} {
		p := bgp.Peer{Address: a, ASN: 65515}
		p.SetDefaults()
		c.Peers = append(c.Peers, p)
	}
	return c
}

func TestBIRDGolden(t *testing.T) {
	aa := section(bgp.ModeActiveActive)
	as := section(bgp.ModeActiveStandby)
	as.BFD.Enabled = true
	as.BFD.MinTx = 300 * time.Millisecond
	for i := range as.Peers {
		as.Peers[i].MultihopTTL = 0 // BFD is single-hop
	}
	for name, tc := range map[string]struct {
		cfg bgp.Config
		opt BIRDOptions
	}{
		"seed003":      {aa, BIRDOptions{Gateway: "10.1.2.1", RouterID: "10.1.2.5"}},
		"standby_bfd":  {as, BIRDOptions{Standby: true}},
		"active_no_gw": {as, BIRDOptions{}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := BIRD(tc.cfg, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs from %s:\n%s", path, got)
			}
			birdParses(t, got)
		})
	}
}

// birdParses runs `bird -p` (parse only) on the configuration when BIRD
// is installed.
func birdParses(t *testing.T, conf []byte) {
	t.Helper()
	bin := labtest.RequireTool(t, "bird")
	path := filepath.Join(t.TempDir(), "bird.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-p", "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("bird -p rejects the configuration: %v\n%s", err, out)
	}
}

func TestBIRDRejectsBadGateway(t *testing.T) {
	if _, err := BIRD(section(bgp.ModeActiveActive), BIRDOptions{Gateway: "nope"}); err == nil {
		t.Fatal("bad gateway accepted")
	}
}
