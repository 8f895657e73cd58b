package policy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/batonha/baton/internal/action/addresses"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/peerings"
	"github.com/batonha/baton/internal/witness"
)

func awsPeerings() *peerings.Config {
	return &peerings.Config{Provider: peerings.ProviderAWS, AWS: peerings.AWS{Region: "eu-west-1",
		Endpoints: []string{"rse-0a1b2c3d4e5f60718", "rse-0f1e2d3c4b5a69788"}, AutoScalingGroup: "nva"}}
}

func azurePeerings() *peerings.Config {
	return &peerings.Config{Provider: peerings.ProviderAzure, Azure: peerings.Azure{SubscriptionID: sub, ResourceGroup: "hub-rg",
		RouteServer: "rs", ScaleSetResourceGroup: "nva-rg", ScaleSet: "nva"}}
}

func dynamoWitness() *witness.Config {
	return &witness.Config{Type: witness.TypeDynamoDB, DynamoDB: witness.DynamoDBConfig{Region: "eu-west-1", Table: "nva-witness", Key: "baton"}}
}

func blobWitness(cred string) *witness.Config {
	return &witness.Config{Type: witness.TypeAzureBlob, AzureBlob: witness.AzureBlobConfig{AccountURL: "https://nvawitness.blob.core.windows.net",
		Container: "baton", Blob: "baton-witness", Credential: cred}}
}

// The peerings reconciler and the DynamoDB witness: every call of
// internal/peerings/aws.go and internal/witness/dynamodb.go, writes
// scoped to the endpoints, route-server peers and the lease items.
func TestAWSPeeringsAndWitness(t *testing.T) {
	got, err := AWS(nil, nil, AWSOptions{Account: "123456789012", Peerings: awsPeerings(), Witness: dynamoWitness()})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "aws_peerings_witness", got)
	var doc Document
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	actions := map[string][]string{}
	for _, s := range doc.Statement {
		for _, a := range s.Action {
			actions[a] = s.Resource
		}
	}
	for a, res := range map[string]string{
		"ec2:DescribeInstances":        "*",
		"ec2:DescribeRouteServerPeers": "*",
		"ec2:CreateRouteServerPeer":    "arn:aws:ec2:eu-west-1:123456789012:route-server-endpoint/rse-0a1b2c3d4e5f60718",
		"ec2:DeleteRouteServerPeer":    "arn:aws:ec2:eu-west-1:123456789012:route-server-peer/*",
		"ec2:CreateTags":               "arn:aws:ec2:eu-west-1:123456789012:route-server-peer/*",
		"dynamodb:UpdateItem":          "arn:aws:dynamodb:eu-west-1:123456789012:table/nva-witness",
		"dynamodb:GetItem":             "arn:aws:dynamodb:eu-west-1:123456789012:table/nva-witness",
	} {
		if !slices.Contains(actions[a], res) {
			t.Errorf("%s: resources %v, want %s", a, actions[a], res)
		}
	}
	// Both lease items: the role's and the peerings leader's.
	if !strings.Contains(string(got), `"baton-peerings"`) {
		t.Errorf("witness statement does not cover the -peerings item:\n%s", got)
	}
	// Without peerings the leader's item is not granted.
	alone, err := AWS(nil, nil, AWSOptions{Witness: dynamoWitness()})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(alone), "peerings") || strings.Contains(string(alone), "RouteServer") {
		t.Errorf("a witness alone grants peerings:\n%s", alone)
	}
	// An etcd witness and Azure peerings add nothing to an AWS document.
	if _, err := AWS(nil, nil, AWSOptions{Peerings: azurePeerings(), Witness: &witness.Config{Type: witness.TypeEtcd}}); err == nil {
		t.Error("an AWS policy with nothing AWS in it was generated")
	}
}

func TestAzurePeeringsAndWitness(t *testing.T) {
	rt := "/subscriptions/" + sub + "/resourceGroups/net-rg/providers/Microsoft.Network/routeTables/rt-a"
	got, err := Azure(&routes.Config{Cloud: "azure", Azure: &routes.Azure{SubscriptionID: sub, TableIDs: []string{rt}}}, nil,
		AzureOptions{Peerings: azurePeerings(), Witness: blobWitness(witness.CredentialDefault), Fencing: true})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "azure_peerings_witness", got)
	var role Role
	if err := json.Unmarshal(got, &role); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"Microsoft.Network/virtualHubs/read", "Microsoft.Network/virtualHubs/bgpConnections/write",
		"Microsoft.Network/virtualHubs/bgpConnections/delete", "Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read",
		"Microsoft.Network/routeTables/routes/write"} {
		if !slices.Contains(role.Actions, a) {
			t.Errorf("role lacks %s: %v", a, role.Actions)
		}
	}
	if !slices.Equal(role.DataActions, []string{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
		"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"}) {
		t.Errorf("data actions %v", role.DataActions)
	}
	for _, s := range []string{"/resourceGroups/hub-rg", "/resourceGroups/nva-rg", "/resourceGroups/net-rg"} {
		if !slices.ContainsFunc(role.AssignableScopes, func(x string) bool { return strings.HasSuffix(x, s) }) {
			t.Errorf("scopes %v lack %s", role.AssignableScopes, s)
		}
	}
	// A shared key needs no data action; a witness alone has no scope.
	shared, err := Azure(nil, nil, AzureOptions{Peerings: azurePeerings(), Witness: blobWitness(witness.CredentialSharedKey)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(shared), "Microsoft.Storage") {
		t.Errorf("a shared-key witness got data actions:\n%s", shared)
	}
	if _, err := Azure(nil, nil, AzureOptions{Witness: blobWitness(witness.CredentialDefault)}); err == nil || !strings.Contains(err.Error(), "--scope") {
		t.Errorf("a witness alone, no scope: err %v, want one naming --scope", err)
	}
	withScope, err := Azure(nil, nil, AzureOptions{Witness: blobWitness(witness.CredentialDefault), Scopes: []string{"/subscriptions/" + sub + "/resourceGroups/st-rg"}})
	if err != nil || !strings.Contains(string(withScope), "blobs/write") {
		t.Errorf("a witness alone with a scope: %v\n%s", err, withScope)
	}
}

func TestNotes(t *testing.T) {
	etcd := &witness.Config{Type: witness.TypeEtcd, Etcd: witness.EtcdConfig{Key: "/baton/witness"}}
	for _, x := range []struct {
		name, cloud string
		p           *peerings.Config
		w           *witness.Config
		want        []string
	}{
		{"nothing", "aws", nil, nil, nil},
		{"etcd", "aws", nil, etcd, []string{"etcd user readwrite on /baton/witness"}},
		{"etcd with peerings", "azure", azurePeerings(), etcd, []string{"/baton/witness and /baton/witness-peerings"}},
		{"dynamodb from azure", "azure", nil, dynamoWitness(), []string{"baton policy --cloud aws"}},
		{"blob from aws", "aws", nil, blobWitness(""), []string{"baton policy --cloud azure"}},
		{"blob shared key", "azure", nil, blobWitness(witness.CredentialSharedKey), []string{"needs no role"}},
		{"blob default", "azure", nil, blobWitness(witness.CredentialDefault), []string{"containers/baton"}},
		{"peerings elsewhere", "azure", awsPeerings(), nil, []string{"provider aws", "--cloud aws"}},
		{"dynamodb from aws", "aws", awsPeerings(), dynamoWitness(), nil},
	} {
		t.Run(x.name, func(t *testing.T) {
			got := strings.Join(Notes(x.cloud, x.p, x.w), "\n")
			if len(x.want) == 0 && got != "" {
				t.Errorf("notes %q, want none", got)
			}
			for _, w := range x.want {
				if !strings.Contains(got, w) {
					t.Errorf("notes %q lack %q", got, w)
				}
			}
		})
	}
}

// Address moves are fenced too: the token is a tag on this node's ENI and
// on every Elastic IP (internal/action/addresses register).
func TestAWSAddressFencing(t *testing.T) {
	a := &addresses.Config{Cloud: "aws", AWS: &addresses.AWS{LocalENI: "eni-0123456789abcdef0", ElasticIPs: []addresses.ElasticIP{{AllocationID: "eipalloc-01234567"}}}}
	without, err := AWS(nil, a, AWSOptions{Region: "eu-west-1", Account: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(without), "CreateTags") {
		t.Fatalf("CreateTags without a witness:\n%s", without)
	}
	with, err := AWS(nil, a, AWSOptions{Region: "eu-west-1", Account: "123456789012", Fencing: true})
	if err != nil {
		t.Fatal(err)
	}
	var doc Document
	if err := json.Unmarshal(with, &doc); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(doc.Statement, func(s Statement) bool { return s.Sid == "BatonAddressFencing" })
	if i < 0 {
		t.Fatalf("no address fencing statement:\n%s", with)
	}
	st := doc.Statement[i]
	if !slices.Equal(st.Resource, []string{"arn:aws:ec2:eu-west-1:123456789012:network-interface/eni-0123456789abcdef0", "arn:aws:ec2:eu-west-1:123456789012:elastic-ip/eipalloc-01234567"}) ||
		st.Condition["ForAllValues:StringEquals"]["aws:TagKeys"] != "baton:fencing-token" {
		t.Errorf("address fencing statement %+v", st)
	}
}

// A scale set elects its peerings writer with bgp.peerings.witness: its
// -peerings item only, beside (not instead of) a role witness's item.
func TestPeeringsWitness(t *testing.T) {
	pc := awsPeerings()
	pc.Witness = &witness.Config{Type: witness.TypeDynamoDB, DynamoDB: witness.DynamoDBConfig{Region: "eu-west-1", Table: "rs-writer", Key: "nva"}}
	got, err := AWS(nil, nil, AWSOptions{Account: "123456789012", Peerings: pc})
	if err != nil {
		t.Fatal(err)
	}
	var doc Document
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(doc.Statement, func(s Statement) bool { return s.Sid == "BatonPeeringsWitness" })
	if i < 0 || !slices.Equal(doc.Statement[i].Resource, []string{"arn:aws:dynamodb:eu-west-1:123456789012:table/rs-writer"}) ||
		!slices.Equal(doc.Statement[i].Condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"].([]any), []any{"nva-peerings"}) {
		t.Fatalf("peerings witness statement missing or wrong:\n%s", got)
	}
	if slices.ContainsFunc(doc.Statement, func(s Statement) bool { return s.Sid == "BatonWitness" }) {
		t.Errorf("a role witness statement without a role witness:\n%s", got)
	}
	az := azurePeerings()
	az.Witness = blobWitness(witness.CredentialDefault)
	role, err := Azure(nil, nil, AzureOptions{Peerings: az})
	if err != nil || !strings.Contains(string(role), "containers/blobs/write") {
		t.Errorf("azure peerings witness: %v\n%s", err, role)
	}
	notes := strings.Join(Notes("azure", &peerings.Config{Provider: "azure", Witness: &witness.Config{Type: witness.TypeEtcd, Etcd: witness.EtcdConfig{Key: "/w"}}}, nil), "\n")
	if !strings.Contains(notes, "bgp.peerings.witness etcd") || !strings.Contains(notes, "/w-peerings") {
		t.Errorf("notes %q", notes)
	}
}
