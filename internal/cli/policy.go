package cli

import (
	"fmt"

	"github.com/batonha/baton/internal/policy"
)

func cmdPolicy(e env, args []string) int {
	fs := newFlags(e, "policy", "--cloud aws|azure [--config FILE] [--account ID] [--region R] [--name NAME]")
	cloud := fs.String("cloud", "", "aws or azure")
	path := fs.String("config", defaultConfig, "configuration file whose routes and addresses sections to cover")
	account := fs.String("account", "", "AWS account ID for resource ARNs (default: any account, *)")
	region := fs.String("region", "", "AWS region for resource ARNs (default: the config's region)")
	partition := fs.String("partition", "aws", "AWS partition")
	name := fs.String("name", "", "Azure custom role name")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, code := loadConfig(e, *path)
	if cfg == nil {
		return code
	}
	var out []byte
	var err error
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
			}
		}
		out, err = policy.AWS(cfg.Routes, cfg.Addresses, policy.AWSOptions{Partition: *partition, Region: *region, Account: *account, Fencing: cfg.Witness != nil, DNS: cfg.DNS})
	case "azure":
		out, err = policy.Azure(cfg.Routes, cfg.Addresses, policy.AzureOptions{Name: *name, Fencing: cfg.Witness != nil, DNS: cfg.DNS})
	default:
		fmt.Fprintln(e.stderr, "baton policy: --cloud must be aws or azure")
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "baton policy: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "%s\n", out)
	return exitOK
}
