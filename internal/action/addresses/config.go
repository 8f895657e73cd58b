package addresses

import (
	"fmt"
	"net/netip"
	"regexp"

	"github.com/batonha/baton/internal/provider/azure"
)

// Config is the `addresses:` section of baton.yaml.
type Config struct {
	Cloud    string `yaml:"cloud"` // aws|azure
	AWS      *AWS   `yaml:"aws"`
	Azure    *Azure `yaml:"azure"`
	Attempts int    `yaml:"attempts"` // per cloud call, default 6
}

// AWS moves secondary private IPs to this node's ENI and associates
// Elastic IPs with it.
type AWS struct {
	Region     string      `yaml:"region"`
	Endpoint   string      `yaml:"endpoint"` // tests only
	LocalENI   string      `yaml:"local_eni"`
	PrivateIPs []string    `yaml:"private_ips"` // secondary IPs, reassigned from wherever they are
	ElasticIPs []ElasticIP `yaml:"elastic_ips"`
}

// ElasticIP names one Elastic IP by allocation ID (preferred) or public IP.
type ElasticIP struct {
	AllocationID string `yaml:"allocation_id"`
	PublicIP     string `yaml:"public_ip"`
	PrivateIP    string `yaml:"private_ip"` // optional: the local private IP to map it to
}

// Azure moves ipConfigurations (by private IP) from the peer's NIC to this
// node's NIC, and public IPs to this node's ipConfiguration.
type Azure struct {
	SubscriptionID string   `yaml:"subscription_id"`
	Endpoint       string   `yaml:"endpoint"`  // tests only
	LocalNIC       string   `yaml:"local_nic"` // ARM resource ID
	PeerNIC        string   `yaml:"peer_nic"`  // ARM resource ID
	IPConfig       string   `yaml:"ip_config"` // local ipConfiguration for public IPs, default the primary
	PrivateIPs     []string `yaml:"private_ips"`
	PublicIPs      []string `yaml:"public_ips"` // ARM resource IDs of public IP addresses
}

var (
	reENI   = regexp.MustCompile(`^eni-[0-9a-f]{8,17}$`)
	reAlloc = regexp.MustCompile(`^eipalloc-[0-9a-f]{8,17}$`)
	reUUID  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// Validate returns every problem, each prefixed with its key path.
func (c Config) Validate() []error {
	var errs []error
	add := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	switch c.Cloud {
	case "aws":
		if c.AWS == nil {
			add("addresses.aws: required when cloud is aws")
		}
		if c.Azure != nil {
			add("addresses.azure: set, but cloud is aws")
		}
	case "azure":
		if c.Azure == nil {
			add("addresses.azure: required when cloud is azure")
		}
		if c.AWS != nil {
			add("addresses.aws: set, but cloud is azure")
		}
	default:
		add("addresses.cloud: %q is not aws or azure", c.Cloud)
	}
	if c.Attempts < 0 || c.Attempts > 100 {
		add("addresses.attempts: %d is outside 0..100", c.Attempts)
	}
	if a := c.AWS; a != nil {
		if !reENI.MatchString(a.LocalENI) {
			add("addresses.aws.local_eni: %q is not an ENI ID (eni-…)", a.LocalENI)
		}
		if len(a.PrivateIPs) == 0 && len(a.ElasticIPs) == 0 {
			add("addresses.aws: nothing to move; set private_ips or elastic_ips")
		}
		errs = append(errs, ips("addresses.aws.private_ips", a.PrivateIPs)...)
		for i, e := range a.ElasticIPs {
			p := fmt.Sprintf("addresses.aws.elastic_ips[%d]", i)
			switch {
			case e.AllocationID != "" && e.PublicIP != "":
				add("%s: allocation_id and public_ip are exclusive; name the address one way", p)
			case e.AllocationID == "" && e.PublicIP == "":
				add("%s: one of allocation_id or public_ip is required", p)
			case e.AllocationID != "" && !reAlloc.MatchString(e.AllocationID):
				add("%s.allocation_id: %q is not an allocation ID (eipalloc-…)", p, e.AllocationID)
			}
			if e.PublicIP != "" {
				if _, err := netip.ParseAddr(e.PublicIP); err != nil {
					add("%s.public_ip: %q is not an IP address", p, e.PublicIP)
				}
			}
			if e.PrivateIP != "" {
				if _, err := netip.ParseAddr(e.PrivateIP); err != nil {
					add("%s.private_ip: %q is not an IP address", p, e.PrivateIP)
				}
			}
		}
	}
	if z := c.Azure; z != nil {
		if !reUUID.MatchString(z.SubscriptionID) {
			add("addresses.azure.subscription_id: %q is not a subscription GUID", z.SubscriptionID)
		}
		if _, err := azure.ParseID(z.LocalNIC, "Microsoft.Network/networkInterfaces"); err != nil {
			add("addresses.azure.local_nic: %w", err)
		}
		if _, err := azure.ParseID(z.PeerNIC, "Microsoft.Network/networkInterfaces"); err != nil {
			add("addresses.azure.peer_nic: %w", err)
		} else if z.PeerNIC == z.LocalNIC {
			add("addresses.azure.peer_nic: equals local_nic")
		}
		if len(z.PrivateIPs) == 0 && len(z.PublicIPs) == 0 {
			add("addresses.azure: nothing to move; set private_ips or public_ips")
		}
		errs = append(errs, ips("addresses.azure.private_ips", z.PrivateIPs)...)
		for i, id := range z.PublicIPs {
			if _, err := azure.ParseID(id, "Microsoft.Network/publicIPAddresses"); err != nil {
				add("addresses.azure.public_ips[%d]: %w", i, err)
			}
		}
	}
	return errs
}

func ips(path string, list []string) []error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range list {
		if _, err := netip.ParseAddr(s); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is not an IP address", path, i, s))
		}
		if seen[s] {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is listed twice", path, i, s))
		}
		seen[s] = true
	}
	return errs
}
