package dns

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Config is the `dns:` section of baton.yaml: on ACTIVE the record points
// at this node.
type Config struct {
	Cloud string `yaml:"cloud"` // aws|azure
	// Name is the record's fully qualified name (fw.example.com).
	Name string `yaml:"name"`
	// Addresses are this node's addresses: IPv4 become an A record, IPv6
	// an AAAA record.
	Addresses []string `yaml:"addresses"`
	// TTL of the records in seconds, default 60.
	TTL int64 `yaml:"ttl"`
	// Reconcile is how often an active node re-checks the record, default 30s.
	Reconcile time.Duration `yaml:"reconcile"`
	// Wait bounds the wait for Route 53 to report the change INSYNC, default 2m.
	Wait  time.Duration `yaml:"wait"`
	AWS   *AWS          `yaml:"aws"`
	Azure *Azure        `yaml:"azure"`
}

// AWS is a Route 53 hosted zone. SetIdentifier with Weight or Failover
// makes the record one member of a weighted or failover record set.
type AWS struct {
	ZoneID        string `yaml:"zone_id"`
	Region        string `yaml:"region"`
	Endpoint      string `yaml:"endpoint"` // tests only: Route 53 endpoint URL
	SetIdentifier string `yaml:"set_identifier"`
	Weight        *int64 `yaml:"weight"`
	Failover      string `yaml:"failover"` // PRIMARY|SECONDARY
}

// Azure is an Azure DNS zone.
type Azure struct {
	SubscriptionID string `yaml:"subscription_id"`
	ResourceGroup  string `yaml:"resource_group"`
	Zone           string `yaml:"zone"`     // example.com; name must lie inside it
	Endpoint       string `yaml:"endpoint"` // tests only: Resource Manager URL
}

// SetDefaults fills in defaults on a fresh `dns:` section (config.Defaulter).
func (c *Config) SetDefaults() {
	c.TTL = 60
	c.Reconcile = 30 * time.Second
	c.Wait = 2 * time.Minute
}

var (
	reZone  = regexp.MustCompile(`^Z[A-Z0-9]{1,31}$`)
	reLabel = regexp.MustCompile(`^(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)$`)
)

func validName(n string) bool {
	n = strings.TrimSuffix(n, ".")
	if n == "" || len(n) > 253 {
		return false
	}
	for _, l := range strings.Split(n, ".") {
		if !reLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	switch c.Cloud {
	case "aws":
		if c.AWS == nil {
			report("aws", "required when cloud is aws")
		}
		if c.Azure != nil {
			report("azure", "set, but cloud is aws")
		}
	case "azure":
		if c.Azure == nil {
			report("azure", "required when cloud is azure")
		}
		if c.AWS != nil {
			report("aws", "set, but cloud is azure")
		}
	default:
		report("cloud", fmt.Sprintf("%q is not aws or azure", c.Cloud))
	}
	if !validName(c.Name) {
		report("name", fmt.Sprintf("%q is not a DNS name", c.Name))
	}
	if len(c.Addresses) == 0 {
		report("addresses", "at least one address of this node is required")
	}
	for i, a := range c.Addresses {
		if _, err := netip.ParseAddr(a); err != nil {
			report(fmt.Sprintf("addresses[%d]", i), fmt.Sprintf("%q is not an IP address", a))
		}
	}
	if c.TTL < 1 || c.TTL > 86400 {
		report("ttl", fmt.Sprintf("%d is outside 1..86400", c.TTL))
	}
	if c.Reconcile < 0 {
		report("reconcile", fmt.Sprintf("%s is negative", c.Reconcile))
	}
	if c.Wait <= 0 {
		report("wait", fmt.Sprintf("%s is not positive", c.Wait))
	}
	if a := c.AWS; a != nil {
		if !reZone.MatchString(a.ZoneID) {
			report("aws.zone_id", fmt.Sprintf("%q is not a hosted zone ID (Z…)", a.ZoneID))
		}
		routed := a.Weight != nil || a.Failover != ""
		if routed && a.SetIdentifier == "" {
			report("aws.set_identifier", "required with weight or failover")
		}
		if a.SetIdentifier != "" && !routed {
			report("aws.set_identifier", "needs weight or failover (a member of a weighted or failover record set)")
		}
		if a.Weight != nil && a.Failover != "" {
			report("aws.weight", "weight and failover are exclusive")
		}
		if a.Weight != nil && (*a.Weight < 0 || *a.Weight > 255) {
			report("aws.weight", fmt.Sprintf("%d is outside 0..255", *a.Weight))
		}
		if a.Failover != "" && a.Failover != "PRIMARY" && a.Failover != "SECONDARY" {
			report("aws.failover", fmt.Sprintf("%q is not PRIMARY or SECONDARY", a.Failover))
		}
	}
	if z := c.Azure; z != nil {
		if z.SubscriptionID == "" {
			report("azure.subscription_id", "required")
		}
		if z.ResourceGroup == "" {
			report("azure.resource_group", "required")
		}
		if !validName(z.Zone) {
			report("azure.zone", fmt.Sprintf("%q is not a DNS zone name", z.Zone))
		} else if _, ok := relative(c.Name, z.Zone); !ok {
			report("name", fmt.Sprintf("%q is not inside the zone %q", c.Name, z.Zone))
		}
	}
}

// fqdn lower-cases n and ends it with a dot.
func fqdn(n string) string { return strings.ToLower(strings.TrimSuffix(n, ".")) + "." }

// relative returns name relative to zone ("@" for the apex).
func relative(name, zone string) (string, bool) {
	n, z := fqdn(name), fqdn(zone)
	if n == z {
		return "@", true
	}
	rel, ok := strings.CutSuffix(n, "."+z)
	return rel, ok && rel != ""
}
