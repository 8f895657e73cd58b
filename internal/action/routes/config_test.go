package routes

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := awsCfg("/var/lib/baton", nil)
	if errs := ok.Validate(); len(errs) > 0 {
		t.Fatalf("valid config rejected: %v", errs)
	}
	for _, x := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"both id and tag", awsCfg("/s", func(a *AWS) { a.Tags = map[string]string{"k": "v"} }), "routes.aws: table_ids and tags are exclusive"},
		{"neither", awsCfg("/s", func(a *AWS) { a.TableIDs = nil }), "routes.aws: one of table_ids or tags is required"},
		{"bad table", awsCfg("/s", func(a *AWS) { a.TableIDs = []string{"rtb-1", "rtb-zz"} }), `routes.aws.table_ids[0]: "rtb-1" is not a route table ID`},
		{"no local eni", awsCfg("/s", func(a *AWS) { a.LocalENI = "" }), "routes.aws.local_eni: required"},
		{"peer targets without peer", awsCfg("/s", func(a *AWS) { a.PeerENI, a.PeerInstance = "", "" }), "routes.aws.peer_targets: needs peer_eni or peer_instance"},
		{"bad cidr", awsCfg("/s", func(a *AWS) { a.Destinations = []string{"10.0.0.1/8"} }), "routes.aws.destinations[0]: \"10.0.0.1/8\" has host bits set"},
		{"no state dir", awsCfg("", nil), "routes.state_dir: required"},
		{"cloud mismatch", Config{Cloud: "azure", AWS: &AWS{}, StateDir: "/s"}, "routes.azure: required when cloud is azure"},
		{"azure both", azCfg("/s", func(z *Azure) { z.Tags = map[string]string{"k": "v"} }), "routes.azure: table_ids and tags are exclusive"},
		{"azure bad id", azCfg("/s", func(z *Azure) {
			z.TableIDs = []string{"/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n"}
		}), "routes.azure.table_ids[0]: resource ID"},
		{"azure local ip", azCfg("/s", func(z *Azure) { z.LocalIP = "10.1.0.300" }), "routes.azure.local_ip: \"10.1.0.300\" is not an IP address"},
		{"azure sub", azCfg("/s", func(z *Azure) { z.SubscriptionID = "nope" }), "routes.azure.subscription_id"},
		{"concurrency", func() Config { c := awsCfg("/s", nil); c.Concurrency = 300; return c }(), "routes.concurrency"},
		{"reconcile", func() Config { c := awsCfg("/s", nil); c.Reconcile = -time.Second; return c }(), "routes.reconcile"},
	} {
		t.Run(x.name, func(t *testing.T) {
			errs := x.cfg.Validate()
			if !strings.Contains(fmt.Sprint(errs), x.want) {
				t.Errorf("Validate = %v, want %q", errs, x.want)
			}
			for _, e := range errs {
				if !strings.HasPrefix(e.Error(), "routes.") {
					t.Errorf("error without key path: %v", e)
				}
			}
		})
	}
}

func TestCaptureRoundTripAndAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	in := map[string]Owned{}
	for _, o := range []Owned{{Table: "rtb-b", Destination: "0.0.0.0/0", Since: epoch}, {Table: "rtb-a", Destination: "10.0.0.0/8", Name: "r1", Since: epoch}} {
		in[o.key()] = o
	}
	if err := saveCapture(dir, "aws", in); err != nil {
		t.Fatal(err)
	}
	out, err := loadCapture(dir, "aws")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out["rtb-a|10.0.0.0/8"].Name != "r1" || !out["rtb-b|0.0.0.0/0"].Since.Equal(epoch) {
		t.Errorf("round trip: %+v", out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if _, err := loadCapture(dir, "azure"); err == nil {
		t.Error("an AWS capture loaded for Azure")
	}
	if err := os.WriteFile(filepath.Join(dir, CaptureFile), []byte(`{"version":1,"cloud":"aws","routes":[{"table":"","destination":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWithBackend(&awsBackend{}, Selection{}, Options{StateDir: dir}); err == nil || !strings.Contains(err.Error(), "entry 0") {
		t.Errorf("damaged capture: %v, want an error", err)
	}
	if m, err := loadCapture(t.TempDir(), "aws"); err != nil || len(m) != 0 {
		t.Errorf("missing capture: %v %v", m, err)
	}
}

func FuzzDecodeCapture(f *testing.F) {
	f.Add([]byte(`{"version":1,"cloud":"aws","routes":[{"table":"rtb-1","destination":"0.0.0.0/0","since":"2026-01-02T03:04:05Z"}]}`))
	f.Add([]byte(`{"version":1,"cloud":"azure","routes":[]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cloud := range []string{"aws", "azure"} {
			m, err := decodeCapture(data, cloud)
			if err != nil {
				continue
			}
			for k, o := range m {
				if o.Table == "" || o.Destination == "" || k != o.key() {
					t.Fatalf("accepted bad entry %+v", o)
				}
			}
			// What decodes re-encodes and decodes to the same set.
			enc, err := encodeCapture(cloud, m)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := decodeCapture(enc, cloud)
			if err != nil || len(m2) != len(m) {
				t.Fatalf("re-decode: %v (%d vs %d)", err, len(m2), len(m))
			}
		}
	})
}
