// Package policy generates the least-privilege cloud permissions for a
// routes/addresses configuration: an AWS IAM policy document scoped by
// route-table ARNs, VPC or tag, or an Azure custom role scoped to the
// resource groups involved. It lists exactly the calls baton makes for that
// configuration and nothing more. `baton policy --cloud aws|azure` calls it.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/batonha/baton/internal/action/addresses"
	"github.com/batonha/baton/internal/action/dns"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/provider/azure"
)

// AWSOptions fill the ARNs; empty fields become "*".
type AWSOptions struct {
	Partition string // default "aws"
	Region    string
	Account   string
	Fencing   bool // a witness is configured: route writes are fenced by a tag
	DNS       *dns.Config
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"` // values: a string or a list
}

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// AWS returns the IAM policy JSON for the given sections (either may be
// nil, not both). Describe calls cannot be scoped by resource in EC2 and get
// "*"; every write is scoped.
func AWS(r *routes.Config, a *addresses.Config, o AWSOptions) ([]byte, error) {
	if (r == nil || r.AWS == nil) && (a == nil || a.AWS == nil) && (o.DNS == nil || o.DNS.AWS == nil) {
		return nil, errors.New("generating AWS policy: none of routes.aws, addresses.aws or dns.aws is configured")
	}
	part, region, account := o.Partition, o.Region, o.Account
	if part == "" {
		part = "aws"
	}
	if region == "" {
		region = "*"
	}
	if account == "" {
		account = "*"
	}
	arn := func(res string) string { return fmt.Sprintf("arn:%s:ec2:%s:%s:%s", part, region, account, res) }
	var describe []string
	var stmts []Statement
	if r != nil && r.AWS != nil {
		c := r.AWS
		describe = append(describe, "ec2:DescribeRouteTables")
		acts := []string{"ec2:ReplaceRoute"}
		if c.CreateMissing {
			acts = append(acts, "ec2:CreateRoute")
		}
		st := Statement{Sid: "BatonRoutes", Effect: "Allow", Action: acts}
		if len(c.TableIDs) > 0 {
			for _, id := range c.TableIDs {
				st.Resource = append(st.Resource, arn("route-table/"+id))
			}
		} else {
			st.Resource = []string{arn("route-table/*")}
			st.Condition = map[string]map[string]any{}
			if len(c.Tags) > 0 {
				st.Condition["StringEquals"] = map[string]any{}
				for k, v := range c.Tags {
					st.Condition["StringEquals"]["ec2:ResourceTag/"+k] = v
				}
			}
			if c.VPC != "" {
				st.Condition["ArnEquals"] = map[string]any{"ec2:Vpc": arn("vpc/" + c.VPC)}
			}
		}
		stmts = append(stmts, st)
		if o.Fencing {
			// With a witness each write records its fencing token in a
			// tag of the table; allow that tag and nothing else.
			fence := Statement{Sid: "BatonFencing", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: st.Resource,
				Condition: map[string]map[string]any{"ForAllValues:StringEquals": {"aws:TagKeys": routes.FenceTag}}}
			stmts = append(stmts, fence)
		}
	}
	if a != nil && a.AWS != nil {
		c := a.AWS
		eni := arn("network-interface/" + c.LocalENI)
		describe = append(describe, "ec2:DescribeNetworkInterfaces")
		if len(c.PrivateIPs) > 0 {
			stmts = append(stmts, Statement{Sid: "BatonPrivateIPs", Effect: "Allow", Action: []string{"ec2:AssignPrivateIpAddresses"}, Resource: []string{eni}})
		}
		if len(c.ElasticIPs) > 0 {
			describe = append(describe, "ec2:DescribeAddresses")
			res := []string{eni}
			for _, e := range c.ElasticIPs {
				if e.AllocationID == "" {
					res = []string{eni, arn("elastic-ip/*")}
					break
				}
				res = append(res, arn("elastic-ip/"+e.AllocationID))
			}
			stmts = append(stmts, Statement{Sid: "BatonElasticIPs", Effect: "Allow", Action: []string{"ec2:AssociateAddress"}, Resource: res})
		}
	}
	if o.DNS != nil && o.DNS.AWS != nil {
		stmts = append(stmts, route53Statements(part, o.DNS)...)
	}
	sort.Strings(describe)
	if len(describe) > 0 {
		stmts = append([]Statement{{Sid: "BatonDescribe", Effect: "Allow", Action: describe, Resource: []string{"*"}}}, stmts...)
	}
	doc := Document{Version: "2012-10-17", Statement: stmts}
	return json.MarshalIndent(doc, "", "  ")
}

// AzureOptions name the role; Scopes overrides the derived assignable scopes.
type AzureOptions struct {
	Name    string // default "baton failover"
	Scopes  []string
	Fencing bool // a witness is configured: the fencing token is a route-table tag
	DNS     *dns.Config
}

// Role is an Azure custom role definition as `az role definition create`
// takes it.
type Role struct {
	Name             string   `json:"Name"`
	IsCustom         bool     `json:"IsCustom"`
	Description      string   `json:"Description"`
	Actions          []string `json:"Actions"`
	NotActions       []string `json:"NotActions"`
	DataActions      []string `json:"DataActions"`
	NotDataActions   []string `json:"NotDataActions"`
	AssignableScopes []string `json:"AssignableScopes"`
}

// Azure returns the custom role JSON for the given sections. The assignable
// scopes are the resource groups of every table, NIC and public IP named;
// tag discovery without a resource group needs the subscription.
func Azure(r *routes.Config, a *addresses.Config, o AzureOptions) ([]byte, error) {
	if (r == nil || r.Azure == nil) && (a == nil || a.Azure == nil) && (o.DNS == nil || o.DNS.Azure == nil) {
		return nil, errors.New("generating Azure role: none of routes.azure, addresses.azure or dns.azure is configured")
	}
	acts := map[string]bool{}
	scopes := map[string]bool{}
	rg := func(id, typ string) error {
		p, err := azure.ParseID(id, typ)
		if err != nil {
			return err
		}
		scopes[fmt.Sprintf("/subscriptions/%s/resourceGroups/%s", p.Subscription, p.ResourceGroup)] = true
		return nil
	}
	if r != nil && r.Azure != nil {
		c := r.Azure
		acts["Microsoft.Network/routeTables/read"] = true
		acts["Microsoft.Network/routeTables/routes/read"] = true // the SDK reads the route back after the update
		acts["Microsoft.Network/routeTables/routes/write"] = true
		if o.Fencing {
			acts["Microsoft.Network/routeTables/write"] = true // UpdateTags: the fencing token
		}
		for _, id := range c.TableIDs {
			if err := rg(id, "Microsoft.Network/routeTables"); err != nil {
				return nil, fmt.Errorf("routes.azure.table_ids: %w", err)
			}
		}
		if len(c.TableIDs) == 0 {
			if c.ResourceGroup != "" {
				scopes[fmt.Sprintf("/subscriptions/%s/resourceGroups/%s", c.SubscriptionID, c.ResourceGroup)] = true
			} else {
				scopes["/subscriptions/"+c.SubscriptionID] = true
			}
		}
	}
	if a != nil && a.Azure != nil {
		c := a.Azure
		acts["Microsoft.Network/networkInterfaces/read"] = true
		acts["Microsoft.Network/networkInterfaces/write"] = true
		for _, id := range []string{c.LocalNIC, c.PeerNIC} {
			if err := rg(id, "Microsoft.Network/networkInterfaces"); err != nil {
				return nil, fmt.Errorf("addresses.azure: %w", err)
			}
		}
		if len(c.PrivateIPs) > 0 {
			acts["Microsoft.Network/virtualNetworks/subnets/join/action"] = true
		}
		if len(c.PublicIPs) > 0 {
			acts["Microsoft.Network/publicIPAddresses/read"] = true
			acts["Microsoft.Network/publicIPAddresses/join/action"] = true
		}
		for _, id := range c.PublicIPs {
			if err := rg(id, "Microsoft.Network/publicIPAddresses"); err != nil {
				return nil, fmt.Errorf("addresses.azure.public_ips: %w", err)
			}
		}
	}
	if o.DNS != nil && o.DNS.Azure != nil {
		// The record sets of the name (A, AAAA) and its fence (TXT).
		for _, t := range []string{"A", "AAAA", "TXT"} {
			acts["Microsoft.Network/dnsZones/"+t+"/read"] = true
			acts["Microsoft.Network/dnsZones/"+t+"/write"] = true
		}
		scopes[fmt.Sprintf("/subscriptions/%s/resourceGroups/%s", o.DNS.Azure.SubscriptionID, o.DNS.Azure.ResourceGroup)] = true
	}
	role := Role{Name: o.Name, IsCustom: true, NotActions: []string{}, DataActions: []string{}, NotDataActions: []string{}}
	if role.Name == "" {
		role.Name = "baton failover"
	}
	role.Description = "Lets baton point route tables and move addresses to the active appliance."
	for k := range acts {
		role.Actions = append(role.Actions, k)
	}
	slices.Sort(role.Actions)
	if len(o.Scopes) > 0 {
		role.AssignableScopes = slices.Clone(o.Scopes)
	} else {
		for s := range scopes {
			role.AssignableScopes = append(role.AssignableScopes, s)
		}
		slices.SortFunc(role.AssignableScopes, func(x, y string) int { return strings.Compare(strings.ToLower(x), strings.ToLower(y)) })
	}
	return json.MarshalIndent(role, "", "  ")
}

// route53Statements allow the dns action's calls on its hosted zone, the
// changes limited to the name and its fence record.
func route53Statements(part string, c *dns.Config) []Statement {
	zone := fmt.Sprintf("arn:%s:route53:::hostedzone/%s", part, c.AWS.ZoneID)
	name := strings.ToLower(strings.TrimSuffix(c.Name, "."))
	return []Statement{
		{Sid: "BatonDNSRead", Effect: "Allow", Action: []string{"route53:ListResourceRecordSets"}, Resource: []string{zone}},
		{Sid: "BatonDNSWrite", Effect: "Allow", Action: []string{"route53:ChangeResourceRecordSets"}, Resource: []string{zone},
			Condition: map[string]map[string]any{"ForAllValues:StringEquals": {
				"route53:ChangeResourceRecordSetsNormalizedRecordNames": []string{name, strings.TrimSuffix(dns.FenceName(name), ".")},
				"route53:ChangeResourceRecordSetsRecordTypes":           []string{"A", "AAAA", "TXT"},
			}}},
		{Sid: "BatonDNSWait", Effect: "Allow", Action: []string{"route53:GetChange"}, Resource: []string{fmt.Sprintf("arn:%s:route53:::change/*", part)}},
	}
}
