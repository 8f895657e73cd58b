package policy

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/batonha/baton/internal/action/addresses"
	"github.com/batonha/baton/internal/action/dns"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/peerings"
	"github.com/batonha/baton/internal/provider/aws"
	"github.com/batonha/baton/internal/provider/azure"
	"github.com/batonha/baton/internal/witness"
)

// Every cloud call baton can make goes through one of these interfaces;
// each method must be granted by `baton policy` for a configuration that
// uses every section. A method added to an interface without its
// permission fails here, before a user meets AccessDenied in production.

// awsSeams name each AWS interface with the IAM service of its calls: the
// action is service:Method.
var awsSeams = []struct {
	iface   reflect.Type
	service string
}{
	{reflect.TypeFor[aws.EC2API](), "ec2"},
	{reflect.TypeFor[peerings.AWSRouteServerAPI](), "ec2"},
	{reflect.TypeFor[witness.DynamoAPI](), "dynamodb"},
	{reflect.TypeFor[dns.Route53API](), "route53"},
}

// azureSeams name each Azure interface with the resource type its calls
// act on; the verb comes from the method (azureVerb).
var azureSeams = []struct {
	iface    reflect.Type
	resource string
}{
	{reflect.TypeFor[azure.RouteTablesAPI](), "Microsoft.Network/routeTables"},
	{reflect.TypeFor[azure.RoutesAPI](), "Microsoft.Network/routeTables/routes"},
	{reflect.TypeFor[azure.InterfacesAPI](), "Microsoft.Network/networkInterfaces"},
	{reflect.TypeFor[azure.PublicIPAddressesAPI](), "Microsoft.Network/publicIPAddresses"},
	{reflect.TypeFor[peerings.AzureBgpConnectionAPI](), "Microsoft.Network/virtualHubs/bgpConnections"},
	{reflect.TypeFor[peerings.AzureBgpConnectionsAPI](), "Microsoft.Network/virtualHubs/bgpConnections"},
	{reflect.TypeFor[peerings.AzureHubsAPI](), "Microsoft.Network/virtualHubs"},
	{reflect.TypeFor[peerings.AzureInterfacesAPI](), "Microsoft.Compute/virtualMachineScaleSets/networkInterfaces"},
	{reflect.TypeFor[dns.RecordSetsAPI](), "Microsoft.Network/dnsZones/A"},
}

// azureVerb maps an ARM client method to the operation it needs; "" for
// a method the table does not know, which fails the test.
func azureVerb(method string) string {
	switch {
	case method == "Get" || strings.HasPrefix(method, "NewList"):
		return "read"
	case method == "BeginCreateOrUpdate" || method == "CreateOrUpdate" || method == "UpdateTags":
		return "write"
	case method == "BeginDelete" || method == "Delete":
		return "delete"
	}
	return ""
}

func TestEveryAWSCallIsGranted(t *testing.T) {
	r := &routes.Config{Cloud: "aws", AWS: &routes.AWS{Region: "eu-west-1", TableIDs: []string{"rtb-0a0a0a0a0a0a0a0a1"}, LocalENI: "eni-0a0a0a0a0a0a0a0a1", CreateMissing: true}}
	a := &addresses.Config{Cloud: "aws", AWS: &addresses.AWS{LocalENI: "eni-0123456789abcdef0", PrivateIPs: []string{"10.0.0.5"}, ElasticIPs: []addresses.ElasticIP{{AllocationID: "eipalloc-01234567"}}}}
	d := &dns.Config{Cloud: "aws", Name: "fw.example.com.", Addresses: []string{"10.0.1.10"}, AWS: &dns.AWS{ZoneID: "Z0123456789ABC"}}
	out, err := AWS(r, a, AWSOptions{Account: "123456789012", Fencing: true, DNS: d, Peerings: awsPeerings(), Witness: dynamoWitness()})
	if err != nil {
		t.Fatal(err)
	}
	var doc Document
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var granted []string
	for _, s := range doc.Statement {
		granted = append(granted, s.Action...)
	}
	for _, s := range awsSeams {
		if s.iface.NumMethod() == 0 {
			t.Errorf("%s has no methods", s.iface)
		}
		for i := range s.iface.NumMethod() {
			want := s.service + ":" + s.iface.Method(i).Name
			if !slices.Contains(granted, want) {
				t.Errorf("%s.%s is called but baton policy does not grant %s", s.iface, s.iface.Method(i).Name, want)
			}
		}
	}
}

func TestEveryAzureCallIsGranted(t *testing.T) {
	rt := "/subscriptions/" + sub + "/resourceGroups/net-rg/providers/Microsoft.Network/routeTables/rt-a"
	nic := func(n string) string {
		return "/subscriptions/" + sub + "/resourceGroups/nva-rg/providers/Microsoft.Network/networkInterfaces/" + n
	}
	pip := "/subscriptions/" + sub + "/resourceGroups/nva-rg/providers/Microsoft.Network/publicIPAddresses/pip"
	r := &routes.Config{Cloud: "azure", Azure: &routes.Azure{SubscriptionID: sub, TableIDs: []string{rt}}}
	a := &addresses.Config{Cloud: "azure", Azure: &addresses.Azure{SubscriptionID: sub, LocalNIC: nic("a"), PeerNIC: nic("b"), PrivateIPs: []string{"10.0.0.5"}, PublicIPs: []string{pip}}}
	d := &dns.Config{Cloud: "azure", Name: "fw.example.com", Addresses: []string{"10.0.1.10"},
		Azure: &dns.Azure{SubscriptionID: sub, ResourceGroup: "rg-dns", Zone: "example.com"}}
	out, err := Azure(r, a, AzureOptions{Fencing: true, DNS: d, Peerings: azurePeerings(), Witness: blobWitness("")})
	if err != nil {
		t.Fatal(err)
	}
	var role Role
	if err := json.Unmarshal(out, &role); err != nil {
		t.Fatal(err)
	}
	for _, s := range azureSeams {
		if s.iface.NumMethod() == 0 {
			t.Errorf("%s has no methods", s.iface)
		}
		for i := range s.iface.NumMethod() {
			m := s.iface.Method(i).Name
			verb := azureVerb(m)
			if verb == "" {
				t.Errorf("%s.%s: no operation known for this method; add it to azureVerb", s.iface, m)
				continue
			}
			want := s.resource + "/" + verb
			if !slices.Contains(role.Actions, want) {
				t.Errorf("%s.%s is called but baton policy does not grant %s", s.iface, m, want)
			}
		}
	}
}
