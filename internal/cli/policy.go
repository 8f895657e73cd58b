package cli

import (
	"fmt"
	"strings"

	"github.com/batonha/baton/internal/peerings"
	"github.com/batonha/baton/internal/policy"
)

func cmdPolicy(e env, args []string) int {
	fs := newFlags(e, "policy", "--cloud aws|azure [--config FILE] [--account ID] [--region R] [--name NAME] [--scope ID ...]")
	cloud := fs.String("cloud", "", "aws or azure")
	path := fs.String("config", defaultConfig, "configuration file whose routes, addresses, dns, bgp.peerings and witness sections to cover")
	account := fs.String("account", "", "AWS account ID for resource ARNs (default: any account, *)")
	region := fs.String("region", "", "AWS region for resource ARNs (default: the config's region)")
	partition := fs.String("partition", "aws", "AWS partition")
	name := fs.String("name", "", "Azure custom role name")
	var scopes scopeList
	fs.Var(&scopes, "scope", "Azure assignable scope (`ID` of a subscription or resource group), instead of the ones the sections name; repeatable")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if len(scopes) > 0 && *cloud != "azure" {
		fmt.Fprintln(e.stderr, "baton policy: --scope: only for --cloud azure")
		return exitUsage
	}
	cfg, code := loadConfig(e, *path)
	if cfg == nil {
		return code
	}
	var out []byte
	var err error
	var pc *peerings.Config
	if cfg.BGP != nil {
		pc = cfg.BGP.Peerings
	}
	switch *cloud {
	case "aws":
		if *region == "" {
			switch {
			case cfg.Routes != nil && cfg.Routes.AWS != nil:
				*region = cfg.Routes.AWS.Region
			case cfg.Addresses != nil && cfg.Addresses.AWS != nil:
				*region = cfg.Addresses.AWS.Region
			case cfg.DNS != nil && cfg.DNS.AWS != nil:
				*region = cfg.DNS.AWS.Region
			case pc != nil && pc.AWS.Region != "":
				*region = pc.AWS.Region
			case cfg.Witness != nil && cfg.Witness.DynamoDB.Region != "":
				*region = cfg.Witness.DynamoDB.Region
			}
		}
		out, err = policy.AWS(cfg.Routes, cfg.Addresses, policy.AWSOptions{Partition: *partition, Region: *region, Account: *account, Fencing: cfg.Witness != nil, DNS: cfg.DNS,
			Peerings: pc, Witness: cfg.Witness})
	case "azure":
		out, err = policy.Azure(cfg.Routes, cfg.Addresses, policy.AzureOptions{Name: *name, Scopes: scopes, Fencing: cfg.Witness != nil, DNS: cfg.DNS,
			Peerings: pc, Witness: cfg.Witness})
	default:
		fmt.Fprintln(e.stderr, "baton policy: --cloud must be aws or azure")
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "baton policy: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "%s\n", out)
	for _, n := range policy.Notes(*cloud, pc, cfg.Witness) {
		fmt.Fprintf(e.stderr, "baton policy: note: %s\n", n)
	}
	return exitOK
}

// scopeList collects repeated --scope values.
type scopeList []string

func (s *scopeList) String() string { return strings.Join(*s, ",") }

func (s *scopeList) Set(v string) error {
	if !strings.HasPrefix(strings.ToLower(v), "/subscriptions/") {
		return fmt.Errorf("%q is not a subscription or resource group ID (/subscriptions/…)", v)
	}
	*s = append(*s, v)
	return nil
}
