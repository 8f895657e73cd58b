package addresses

import (
	"fmt"
	"net/netip"
	"regexp"

	"github.com/batonha/baton/internal/config/rule"
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
	return rule.Errors("addresses", c.Check)
}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	r := rule.New(report)
	switch c.Cloud {
	case "aws":
		if c.AWS == nil {
			r.Errorf("aws", "required when cloud is aws")
		}
		if c.Azure != nil {
			r.Errorf("azure", "set, but cloud is aws")
		}
	case "azure":
		if c.Azure == nil {
			r.Errorf("azure", "required when cloud is azure")
		}
		if c.AWS != nil {
			r.Errorf("aws", "set, but cloud is azure")
		}
	default:
		r.Errorf("cloud", "%q is not aws or azure", c.Cloud)
	}
	if c.Attempts < 0 || c.Attempts > 100 {
		r.Errorf("attempts", "%d is outside 0..100", c.Attempts)
	}
	if a := c.AWS; a != nil {
		r := r.At("aws")
		if !reENI.MatchString(a.LocalENI) {
			r.Errorf("local_eni", "%q is not an ENI ID (eni-…)", a.LocalENI)
		}
		if len(a.PrivateIPs) == 0 && len(a.ElasticIPs) == 0 {
			r.Errorf("", "nothing to move; set private_ips or elastic_ips")
		}
		ips(r.At("private_ips"), a.PrivateIPs)
		for i, e := range a.ElasticIPs {
			r := r.At(fmt.Sprintf("elastic_ips[%d]", i))
			switch {
			case e.AllocationID != "" && e.PublicIP != "":
				r.Errorf("", "allocation_id and public_ip are exclusive; name the address one way")
			case e.AllocationID == "" && e.PublicIP == "":
				r.Errorf("", "one of allocation_id or public_ip is required")
			case e.AllocationID != "" && !reAlloc.MatchString(e.AllocationID):
				r.Errorf("allocation_id", "%q is not an allocation ID (eipalloc-…)", e.AllocationID)
			}
			if e.PublicIP != "" {
				if _, err := netip.ParseAddr(e.PublicIP); err != nil {
					r.Errorf("public_ip", "%q is not an IP address", e.PublicIP)
				}
			}
			if e.PrivateIP != "" {
				if _, err := netip.ParseAddr(e.PrivateIP); err != nil {
					r.Errorf("private_ip", "%q is not an IP address", e.PrivateIP)
				}
			}
		}
	}
	if z := c.Azure; z != nil {
		r := r.At("azure")
		if !reUUID.MatchString(z.SubscriptionID) {
			r.Errorf("subscription_id", "%q is not a subscription GUID", z.SubscriptionID)
		}
		if _, err := azure.ParseID(z.LocalNIC, "Microsoft.Network/networkInterfaces"); err != nil {
			r.Errorf("local_nic", "%v", err)
		}
		if _, err := azure.ParseID(z.PeerNIC, "Microsoft.Network/networkInterfaces"); err != nil {
			r.Errorf("peer_nic", "%v", err)
		} else if z.PeerNIC == z.LocalNIC {
			r.Errorf("peer_nic", "equals local_nic")
		}
		if len(z.PrivateIPs) == 0 && len(z.PublicIPs) == 0 {
			r.Errorf("", "nothing to move; set private_ips or public_ips")
		}
		ips(r.At("private_ips"), z.PrivateIPs)
		for i, id := range z.PublicIPs {
			if _, err := azure.ParseID(id, "Microsoft.Network/publicIPAddresses"); err != nil {
				r.Errorf(fmt.Sprintf("public_ips[%d]", i), "%v", err)
			}
		}
	}
}

// ips checks a list of IP addresses, each once.
func ips(r *rule.Report, list []string) {
	seen := map[string]bool{}
	for i, s := range list {
		key := fmt.Sprintf("[%d]", i)
		if _, err := netip.ParseAddr(s); err != nil {
			r.Errorf(key, "%q is not an IP address", s)
		}
		if seen[s] {
			r.Errorf(key, "%q is listed twice", s)
		}
		seen[s] = true
	}
}
