package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updatePolicy = flag.Bool("update-policy", false, "rewrite testdata/policy_*.golden from `baton policy` on the examples")

// TestPolicyOnExamples runs `baton policy` on the worked examples of
// examples/aws-routes and examples/azure-routes and compares the output
// with testdata/policy_*.golden (the README quotes them).
func TestPolicyOnExamples(t *testing.T) {
	for _, x := range []struct {
		name string
		args []string
		want []string // what the document must grant, checked on top of the golden file
	}{
		{"aws_nva-a", []string{"--cloud", "aws", "--config", "../../examples/aws-routes/nva-a.yaml", "--account", "123456789012", "--region", "eu-west-1"},
			[]string{"arn:aws:ec2:eu-west-1:123456789012:route-table/rtb-0a0a0a0a0a0a0a0a1", "ec2:AssociateAddress", "ec2:AssignPrivateIpAddresses"}},
		{"aws_nva-b", []string{"--cloud", "aws", "--config", "../../examples/aws-routes/nva-b.yaml", "--account", "123456789012", "--region", "eu-west-1"},
			[]string{"network-interface/eni-0b2b2b2b2b2b2b2b2"}},
		{"azure_nva-a", []string{"--cloud", "azure", "--config", "../../examples/azure-routes/nva-a.yaml", "--name", "baton-nva"},
			[]string{"Microsoft.Network/routeTables/routes/write", "/resourceGroups/rg-spokes"}},
		{"azure_nva-b", []string{"--cloud", "azure", "--config", "../../examples/azure-routes/nva-b.yaml", "--name", "baton-nva"},
			[]string{"Microsoft.Network/routeTables/read"}},
	} {
		t.Run(x.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Run(append([]string{"policy"}, x.args...), &stdout, &stderr, nil); code != exitOK {
				t.Fatalf("baton policy exited %d: %s", code, stderr.String())
			}
			got := stdout.Bytes()
			if !json.Valid(got) {
				t.Fatalf("not JSON:\n%s", got)
			}
			for _, w := range x.want {
				if !bytes.Contains(got, []byte(w)) {
					t.Errorf("policy lacks %q:\n%s", w, got)
				}
			}
			if bytes.Contains(got, []byte(`"*:*"`)) || bytes.Contains(got, []byte(`"ec2:*"`)) {
				t.Errorf("policy grants a wildcard action:\n%s", got)
			}
			path := filepath.Join("testdata", "policy_"+x.name+".golden")
			if *updatePolicy {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestPolicyOnExamples -update-policy to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s:\n%s", path, got)
			}
		})
	}
}

func TestPolicyRejectsBadInput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"policy", "--cloud", "gcp", "--config", "../../examples/aws-routes/nva-a.yaml"}, &stdout, &stderr, nil); code != exitUsage {
		t.Errorf("--cloud gcp exited %d, want %d", code, exitUsage)
	}
	// A config naming both table IDs and tags is refused, naming the field.
	dir := t.TempDir()
	src, err := os.ReadFile("../../examples/aws-routes/nva-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "    table_ids:\n", "    tags: {ha: pair1}\n    table_ids:\n", 1)
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := Run([]string{"policy", "--cloud", "aws", "--config", path}, &stdout, &stderr, nil); code == exitOK {
		t.Fatalf("a config with both table_ids and tags was accepted:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "table_ids and tags are exclusive") {
		t.Errorf("error does not name the fields: %s", stderr.String())
	}
}

// baton policy covers bgp.peerings and the witness: the Azure role gets
// the route server's actions, and what no role can say (an etcd
// witness's own users) is printed as a note on stderr.
func TestPolicyPeeringsAndWitness(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "baton.yaml")
	doc := `node: {name: nva-a}
heartbeat: {key_file: /etc/baton/heartbeat.key}
peer: {name: nva-b, paths: [{name: a, address: "10.0.0.5:5405"}]}
bgp:
  mode: active-standby
  asn: 65001
  prefixes: [0.0.0.0/0]
  peers: [{address: 10.1.1.4, asn: 65515}]
  peerings:
    provider: azure
    azure: {subscription_id: 11111111-2222-4333-8444-555555555555, resource_group: hub, route_server: rs, scale_set: nva}
witness:
  type: etcd
  etcd: {endpoints: ["https://10.0.9.1:2379"]}
`
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"policy", "--cloud", "azure", "--config", cfg}, &stdout, &stderr, nil); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"Microsoft.Network/virtualHubs/bgpConnections/write", "Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read", "/resourceGroups/hub"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("role lacks %s:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "note: witness etcd") || !strings.Contains(stderr.String(), "/baton/witness-peerings") {
		t.Errorf("stderr %q: want the etcd note naming both keys", stderr.String())
	}
	// Nothing AWS in it: --cloud aws is refused with the reason.
	stdout.Reset()
	stderr.Reset()
	if code := Run([]string{"policy", "--cloud", "aws", "--config", cfg}, &stdout, &stderr, nil); code != exitUsage || !strings.Contains(stderr.String(), "bgp.peerings (provider aws)") {
		t.Errorf("--cloud aws: exit %d, stderr %q", code, stderr.String())
	}
	// --scope is Azure's only.
	if code := Run([]string{"policy", "--cloud", "aws", "--scope", "/subscriptions/x", "--config", cfg}, &stdout, &stderr, nil); code != exitUsage {
		t.Errorf("--scope with --cloud aws: exit %d", code)
	}
}
