package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonha/baton/internal/action/addresses"
	"github.com/batonha/baton/internal/action/routes"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const sub = "00000000-0000-0000-0000-000000000001"

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if !json.Valid(got) {
		t.Fatalf("%s: invalid JSON:\n%s", name, got)
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

func TestAWSPolicies(t *testing.T) {
	o := AWSOptions{Region: "eu-west-1", Account: "123456789012"}
	for _, x := range []struct {
		name string
		r    *routes.Config
		a    *addresses.Config
	}{
		{"aws_table_ids", &routes.Config{Cloud: "aws", AWS: &routes.AWS{TableIDs: []string{"rtb-0123456789abcdef0", "rtb-0123456789abcdef1"}}}, nil},
		{"aws_tags_vpc_create", &routes.Config{Cloud: "aws", AWS: &routes.AWS{Tags: map[string]string{"ha": "pair1"}, VPC: "vpc-01234567", CreateMissing: true}}, nil},
		{"aws_addresses", nil, &addresses.Config{Cloud: "aws", AWS: &addresses.AWS{LocalENI: "eni-0123456789abcdef0", PrivateIPs: []string{"10.0.0.5"}, ElasticIPs: []addresses.ElasticIP{{AllocationID: "eipalloc-01234567"}}}}},
	} {
		t.Run(x.name, func(t *testing.T) {
			got, err := AWS(x.r, x.a, o)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, x.name, got)
		})
	}
	if _, err := AWS(nil, nil, o); err == nil {
		t.Error("empty configuration accepted")
	}
}

func TestAWSPolicyScopesWrites(t *testing.T) {
	got, err := AWS(&routes.Config{Cloud: "aws", AWS: &routes.AWS{TableIDs: []string{"rtb-0123456789abcdef0"}}}, nil, AWSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var doc Document
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Statement {
		for _, a := range s.Action {
			if a == "ec2:ReplaceRoute" && (len(s.Resource) != 1 || s.Resource[0] != "arn:aws:ec2:*:*:route-table/rtb-0123456789abcdef0") {
				t.Errorf("ReplaceRoute not scoped to the table: %v", s.Resource)
			}
			if a == "ec2:CreateRoute" {
				t.Error("CreateRoute granted without create_missing")
			}
		}
	}
}

func TestAzureRoles(t *testing.T) {
	rt := "/subscriptions/" + sub + "/resourceGroups/net-rg/providers/Microsoft.Network/routeTables/rt-a"
	nic := func(n string) string {
		return "/subscriptions/" + sub + "/resourceGroups/nva-rg/providers/Microsoft.Network/networkInterfaces/" + n
	}
	pip := "/subscriptions/" + sub + "/resourceGroups/nva-rg/providers/Microsoft.Network/publicIPAddresses/pip"
	for _, x := range []struct {
		name string
		r    *routes.Config
		a    *addresses.Config
	}{
		{"azure_routes", &routes.Config{Cloud: "azure", Azure: &routes.Azure{SubscriptionID: sub, TableIDs: []string{rt}}}, nil},
		{"azure_routes_tags", &routes.Config{Cloud: "azure", Azure: &routes.Azure{SubscriptionID: sub, Tags: map[string]string{"ha": "x"}}}, nil},
		{"azure_all", &routes.Config{Cloud: "azure", Azure: &routes.Azure{SubscriptionID: sub, TableIDs: []string{rt}}},
			&addresses.Config{Cloud: "azure", Azure: &addresses.Azure{SubscriptionID: sub, LocalNIC: nic("a"), PeerNIC: nic("b"), PrivateIPs: []string{"10.0.0.5"}, PublicIPs: []string{pip}}}},
	} {
		t.Run(x.name, func(t *testing.T) {
			got, err := Azure(x.r, x.a, AzureOptions{})
			if err != nil {
				t.Fatal(err)
			}
			golden(t, x.name, got)
		})
	}
	if _, err := Azure(&routes.Config{Cloud: "azure", Azure: &routes.Azure{SubscriptionID: sub, TableIDs: []string{"/bad"}}}, nil, AzureOptions{}); err == nil {
		t.Error("bad table ID accepted")
	}
}

func TestAWSFencingTagPermission(t *testing.T) {
	r := &routes.Config{Cloud: "aws", AWS: &routes.AWS{Region: "eu-west-1", TableIDs: []string{"rtb-0a0a0a0a0a0a0a0a1"}, LocalENI: "eni-0a0a0a0a0a0a0a0a1"}}
	without, err := AWS(r, nil, AWSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	with, err := AWS(r, nil, AWSOptions{Fencing: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(without), "ec2:CreateTags") {
		t.Fatal("CreateTags granted without a witness")
	}
	for _, want := range []string{"ec2:CreateTags", `"aws:TagKeys": "baton:fencing-token"`, "route-table/rtb-0a0a0a0a0a0a0a0a1"} {
		if !strings.Contains(string(with), want) {
			t.Errorf("fencing policy lacks %s:\n%s", want, with)
		}
	}
}
