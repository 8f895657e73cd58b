// Package policy generates the least-privilege cloud permissions for a
// configuration's routes, addresses, dns, bgp.peerings and witness
// sections: an AWS IAM policy document scoped by route-table ARNs, VPC or
// tag, or an Azure custom role scoped to the resource groups involved. It
// lists exactly the calls baton makes for that configuration and nothing
// more. `baton policy --cloud aws|azure` calls it.
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
	"github.com/batonha/baton/internal/peerings"
	"github.com/batonha/baton/internal/provider/azure"
	"github.com/batonha/baton/internal/witness"
)

// AWSOptions fill the ARNs; empty fields become "*".
type AWSOptions struct {
	Partition string // default "aws"
	Region    string
	Account   string
	Fencing   bool // a witness is configured: route writes are fenced by a tag
	DNS       *dns.Config
	// Peerings is the bgp.peerings section (`baton peerings`); only an
	// aws provider adds statements.
	Peerings *peerings.Config
	// Witness is the witness section; only a dynamodb witness adds
	// statements (see Notes for the others).
	Witness *witness.Config
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
	awsPeerings := o.Peerings != nil && o.Peerings.Provider == peerings.ProviderAWS
	isDynamo := func(w *witness.Config) bool { return w != nil && w.Type == witness.TypeDynamoDB }
	peeringsWitness := (*witness.Config)(nil)
	if o.Peerings != nil {
		peeringsWitness = o.Peerings.Witness
	}
	awsWitness := isDynamo(o.Witness) || isDynamo(peeringsWitness)
	if (r == nil || r.AWS == nil) && (a == nil || a.AWS == nil) && (o.DNS == nil || o.DNS.AWS == nil) && !awsPeerings && !awsWitness {
		return nil, errors.New("generating AWS policy: none of routes.aws, addresses.aws, dns.aws, bgp.peerings (provider aws) or a dynamodb witness is configured")
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
	arnIn := func(svc, reg, res string) string {
		if reg == "" {
			reg = region
		}
		return fmt.Sprintf("arn:%s:%s:%s:%s:%s", part, svc, reg, account, res)
	}
	arn := func(res string) string { return arnIn("ec2", region, res) }
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
		if o.Fencing {
			// With a witness the token is also a tag on this node's ENI
			// and on every Elastic IP (both nodes name them).
			res := []string{eni}
			for _, e := range c.ElasticIPs {
				if e.AllocationID == "" {
					res = []string{eni, arn("elastic-ip/*")}
					break
				}
				res = append(res, arn("elastic-ip/"+e.AllocationID))
			}
			stmts = append(stmts, Statement{Sid: "BatonAddressFencing", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: res,
				Condition: map[string]map[string]any{"ForAllValues:StringEquals": {"aws:TagKeys": routes.FenceTag}}})
		}
	}
	if o.DNS != nil && o.DNS.AWS != nil {
		stmts = append(stmts, route53Statements(part, o.DNS)...)
	}
	if awsPeerings {
		// baton peerings: list the group's instances and the endpoints'
		// peers, create a peer (tagged baton:peering on creation) on the
		// named endpoints, delete peers.
		c := o.Peerings.AWS
		describe = append(describe, "ec2:DescribeInstances", "ec2:DescribeRouteServerPeers")
		peer := arnIn("ec2", c.Region, "route-server-peer/*")
		create := Statement{Sid: "BatonPeeringsCreate", Effect: "Allow", Action: []string{"ec2:CreateRouteServerPeer"}}
		for _, e := range c.Endpoints {
			create.Resource = append(create.Resource, arnIn("ec2", c.Region, "route-server-endpoint/"+e))
		}
		create.Resource = append(create.Resource, peer)
		stmts = append(stmts, create,
			Statement{Sid: "BatonPeeringsTag", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: []string{peer},
				Condition: map[string]map[string]any{"StringEquals": {"ec2:CreateAction": "CreateRouteServerPeer"}}},
			Statement{Sid: "BatonPeeringsDelete", Effect: "Allow", Action: []string{"ec2:DeleteRouteServerPeer"}, Resource: []string{peer}})
	}
	lease := func(sid string, w witness.DynamoDBConfig, keys []string) Statement {
		return Statement{Sid: sid, Effect: "Allow", Action: []string{"dynamodb:GetItem", "dynamodb:UpdateItem"},
			Resource:  []string{arnIn("dynamodb", w.Region, "table/"+w.Table)},
			Condition: map[string]map[string]any{"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": keys}}}
	}
	if isDynamo(o.Witness) {
		// The lease item (and, when it also elects the peerings writer,
		// its -peerings item): conditional updates and reads, nothing else.
		w := o.Witness.DynamoDB
		keys := []string{w.Key}
		if o.Peerings != nil && peeringsWitness == nil {
			keys = append(keys, w.Key+peerings.LeaseSuffix)
		}
		stmts = append(stmts, lease("BatonWitness", w, keys))
	}
	if isDynamo(peeringsWitness) {
		w := peeringsWitness.DynamoDB
		stmts = append(stmts, lease("BatonPeeringsWitness", w, []string{w.Key + peerings.LeaseSuffix}))
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
	// Peerings is the bgp.peerings section; only an azure provider adds
	// actions.
	Peerings *peerings.Config
	// Witness is the witness section; only an azureblob witness using the
	// default credential adds data actions (see Notes for the others).
	Witness *witness.Config
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
	azPeerings := o.Peerings != nil && o.Peerings.Provider == peerings.ProviderAzure
	isBlobRole := func(w *witness.Config) bool {
		return w != nil && w.Type == witness.TypeAzureBlob && w.AzureBlob.Credential != witness.CredentialSharedKey
	}
	azWitness := isBlobRole(o.Witness) || (o.Peerings != nil && isBlobRole(o.Peerings.Witness))
	if (r == nil || r.Azure == nil) && (a == nil || a.Azure == nil) && (o.DNS == nil || o.DNS.Azure == nil) && !azPeerings && !azWitness {
		return nil, errors.New("generating Azure role: none of routes.azure, addresses.azure, dns.azure, bgp.peerings (provider azure) or an azureblob witness is configured")
	}
	acts := map[string]bool{}
	dataActs := map[string]bool{}
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
	if azPeerings {
		// baton peerings: the route server is a virtual hub; its BGP
		// connections are listed, created and deleted; the scale set's
		// instances are read from their NICs.
		c := o.Peerings.Azure
		acts["Microsoft.Network/virtualHubs/read"] = true
		acts["Microsoft.Network/virtualHubs/bgpConnections/read"] = true
		acts["Microsoft.Network/virtualHubs/bgpConnections/write"] = true
		acts["Microsoft.Network/virtualHubs/bgpConnections/delete"] = true
		acts["Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read"] = true
		vmssRG := c.ScaleSetResourceGroup
		if vmssRG == "" {
			vmssRG = c.ResourceGroup
		}
		for _, g := range []string{c.ResourceGroup, vmssRG} {
			scopes[fmt.Sprintf("/subscriptions/%s/resourceGroups/%s", c.SubscriptionID, g)] = true
		}
	}
	if azWitness {
		// The lease blob: created empty, its properties read, leased
		// (acquire, renew, release, break: all blob writes) and its
		// metadata set under the lease.
		dataActs["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"] = true
		dataActs["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"] = true
	}
	role := Role{Name: o.Name, IsCustom: true, NotActions: []string{}, DataActions: []string{}, NotDataActions: []string{}}
	if role.Name == "" {
		role.Name = "baton failover"
	}
	role.Description = "Lets baton point route tables and move addresses to the active appliance."
	if azPeerings || azWitness {
		var does []string
		if len(acts) > 0 && (r != nil || a != nil || o.DNS != nil) {
			does = append(does, "steer traffic to the active appliance")
		}
		if azPeerings {
			does = append(does, "keep the route server's peerings in step with the scale set")
		}
		if azWitness {
			does = append(does, "hold the witness lease")
		}
		last := len(does) - 1
		if last > 0 {
			does[last] = "and " + does[last]
		}
		sep := ", "
		if len(does) == 2 {
			sep = " "
		}
		role.Description = "Lets baton " + strings.Join(does, sep) + "."
	}
	for k := range acts {
		role.Actions = append(role.Actions, k)
	}
	slices.Sort(role.Actions)
	for k := range dataActs {
		role.DataActions = append(role.DataActions, k)
	}
	slices.Sort(role.DataActions)
	if len(o.Scopes) > 0 {
		role.AssignableScopes = slices.Clone(o.Scopes)
	} else {
		for s := range scopes {
			role.AssignableScopes = append(role.AssignableScopes, s)
		}
		slices.SortFunc(role.AssignableScopes, func(x, y string) int { return strings.Compare(strings.ToLower(x), strings.ToLower(y)) })
	}
	if len(role.AssignableScopes) == 0 {
		return nil, errors.New("generating Azure role: no section names a subscription or resource group to scope it to (an azureblob witness alone); give the scopes (baton policy --scope /subscriptions/SUB/resourceGroups/RG)")
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

// Notes says what a permission document for cloud ("aws" or "azure")
// cannot express for the peerings and witness sections (w is the role
// witness): permissions that live elsewhere (etcd's own users, the other
// cloud's document) or need a scope only the operator knows.
func Notes(cloud string, p *peerings.Config, w *witness.Config) []string {
	var out []string
	if p != nil && p.Provider != cloud {
		out = append(out, fmt.Sprintf("bgp.peerings uses provider %s: its permissions are in baton policy --cloud %s", p.Provider, p.Provider))
	}
	if w != nil {
		name := func(k string) string {
			if p != nil && p.Witness == nil {
				return k + " and " + k + peerings.LeaseSuffix
			}
			return k
		}
		out = append(out, witnessNotes(cloud, "witness", w, name)...)
	}
	if p != nil && p.Witness != nil {
		out = append(out, witnessNotes(cloud, "bgp.peerings.witness", p.Witness, func(k string) string { return k + peerings.LeaseSuffix })...)
	}
	return out
}

func witnessNotes(cloud, section string, w *witness.Config, keys func(string) string) []string {
	switch {
	case w.Type == witness.TypeEtcd:
		return []string{fmt.Sprintf("%s etcd: no cloud permission; with etcd authentication, give the node's etcd user readwrite on %s (etcdctl role grant-permission ROLE readwrite %s)", section, keys(w.Etcd.Key), w.Etcd.Key)}
	case w.Type == witness.TypeDynamoDB && cloud != "aws":
		return []string{section + " dynamodb: its permissions are in baton policy --cloud aws"}
	case w.Type == witness.TypeAzureBlob && cloud != "azure":
		return []string{section + " azureblob: its permissions are in baton policy --cloud azure"}
	case w.Type == witness.TypeAzureBlob && w.AzureBlob.Credential == witness.CredentialSharedKey:
		return []string{section + " azureblob: credential shared_key needs no role (the account key grants everything: keep key_file 0600)"}
	case w.Type == witness.TypeAzureBlob:
		return []string{fmt.Sprintf("%s azureblob: assign the role's data actions at the container %s/%s (.../storageAccounts/ACCOUNT/blobServices/default/containers/%s); add the storage account's resource group to AssignableScopes if it is not listed",
			section, strings.TrimSuffix(w.AzureBlob.AccountURL, "/"), w.AzureBlob.Container, w.AzureBlob.Container)}
	}
	return nil
}
