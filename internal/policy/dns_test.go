package policy

import (
	"testing"

	"github.com/batonha/baton/internal/action/dns"
)

func TestDNSPolicies(t *testing.T) {
	c := &dns.Config{Cloud: "aws", Name: "FW.example.com.", Addresses: []string{"10.0.1.10"}, AWS: &dns.AWS{ZoneID: "Z0123456789ABC"}}
	out, err := AWS(nil, nil, AWSOptions{DNS: c})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "aws_dns", out)

	z := &dns.Config{Cloud: "azure", Name: "fw.example.com", Addresses: []string{"10.0.1.10"},
		Azure: &dns.Azure{SubscriptionID: sub, ResourceGroup: "rg-dns", Zone: "example.com"}}
	out, err = Azure(nil, nil, AzureOptions{DNS: z})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "azure_dns", out)
}
