package peerings

import (
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/batonha/baton/internal/witness"
)

// Providers.
const (
	ProviderAzure = "azure"
	ProviderAWS   = "aws"
)

// Defaults for a fresh section.
const (
	DefaultNamePrefix       = "baton-"
	DefaultInterval         = time.Minute
	DefaultOperationTimeout = 5 * time.Minute
	DefaultDrainTimeout     = 30 * time.Second
	DefaultAzureMaxPeers    = 8
	DefaultLiveness         = "bgp-keepalive"
	// ManagedTag is the AWS tag key that marks a route-server peer baton
	// created; its value is the name.
	ManagedTag = "baton:peering"
)

// Config is the `bgp.peerings:` section: the reconciler run by
// `baton peerings`.
type Config struct {
	// Provider is azure or aws (required).
	Provider string `yaml:"provider"`
	// NamePrefix marks the peerings baton manages: it names them
	// NamePrefix + the instance IP with dashes. A peering whose name does
	// not start with it is never changed or deleted. Default "baton-".
	NamePrefix string `yaml:"name_prefix"`
	// PeerASN is the appliances' ASN; default bgp.asn.
	PeerASN int `yaml:"peer_asn"`
	// Interval is the poll interval. Default 1m.
	Interval time.Duration `yaml:"interval"`
	// OperationTimeout bounds the wait for one create or delete to reach
	// its final provisioning state. Default 5m.
	OperationTimeout time.Duration `yaml:"operation_timeout"`
	// DrainTimeout is how long a stale peering whose session is still up
	// is left for its node to withdraw before it is deleted. Default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Webhook, when set, triggers a round on an authenticated POST (Azure
	// Event Grid events included).
	Webhook WebhookConfig `yaml:"webhook"`
	Azure   Azure         `yaml:"azure"`
	AWS     AWS           `yaml:"aws"`
	// Witness elects the one writer among reconcilers that share it,
	// instead of the role witness (the top-level witness section): for
	// instances with no peer, which must not hold a role lease. Its
	// key, blob or item gets LeaseSuffix like the role witness's.
	Witness *witness.Config `yaml:"witness"`
}

// WriterWitness is the witness whose -peerings lease elects the writer:
// the section's own, else the role witness (nil: none).
func (c *Config) WriterWitness(role *witness.Config) *witness.Config {
	if c.Witness != nil {
		return c.Witness
	}
	return role
}

// WebhookConfig is the HTTP trigger.
type WebhookConfig struct {
	Listen    string `yaml:"listen"`     // host:port; empty = off
	TokenFile string `yaml:"token_file"` // shared token (>= 16 characters), required with listen
	// TLS is the HTTPS certificate (Event Grid delivers to https only);
	// required with listen unless Insecure.
	TLS struct {
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	// Insecure serves plain HTTP (the token then travels in clear).
	Insecure bool `yaml:"insecure"`
}

// Azure is Azure Route Server (a virtual hub) and a VM scale set.
type Azure struct {
	SubscriptionID string `yaml:"subscription_id"`
	ResourceGroup  string `yaml:"resource_group"` // the route server's
	RouteServer    string `yaml:"route_server"`   // the virtual hub's name
	// ScaleSetResourceGroup defaults to resource_group.
	ScaleSetResourceGroup string `yaml:"scale_set_resource_group"`
	ScaleSet              string `yaml:"scale_set"`
	// MaxPeers is the route server's peer limit. Default 8.
	MaxPeers int `yaml:"max_peers"`
}

// AWS is a VPC Route Server's endpoints and an Auto Scaling group.
type AWS struct {
	Region string `yaml:"region"`
	// Endpoints are the route-server endpoint IDs (rse-...): one peer per
	// appliance is created on each.
	Endpoints []string `yaml:"endpoints"`
	// AutoScalingGroup names the group whose running instances peer.
	AutoScalingGroup string `yaml:"auto_scaling_group"`
	// Liveness is bfd or bgp-keepalive (default).
	Liveness string `yaml:"liveness"`
}

// SetDefaults fills in defaults on a fresh section (config.Defaulter).
func (c *Config) SetDefaults() {
	c.NamePrefix = DefaultNamePrefix
	c.Interval = DefaultInterval
	c.OperationTimeout = DefaultOperationTimeout
	c.DrainTimeout = DefaultDrainTimeout
	c.Azure.MaxPeers = DefaultAzureMaxPeers
	c.AWS.Liveness = DefaultLiveness
}

var (
	namePrefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$`)
	endpointRE   = regexp.MustCompile(`^rse-[0-9a-f]{8,17}$`)
)

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	bad := func(key, format string, args ...any) { report(key, fmt.Sprintf(format, args...)) }
	if !namePrefixRE.MatchString(c.NamePrefix) {
		bad("name_prefix", "%q: want 1-40 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", c.NamePrefix)
	}
	if c.PeerASN < 0 || c.PeerASN > 4294967294 {
		bad("peer_asn", "%d is out of range 1..4294967294", c.PeerASN)
	}
	if c.Interval < time.Second || c.Interval > 24*time.Hour {
		bad("interval", "%v is out of range 1s..24h", c.Interval)
	}
	if c.OperationTimeout < time.Second || c.OperationTimeout > time.Hour {
		bad("operation_timeout", "%v is out of range 1s..1h", c.OperationTimeout)
	}
	if c.DrainTimeout < 0 || c.DrainTimeout > time.Hour {
		bad("drain_timeout", "%v is out of range 0..1h", c.DrainTimeout)
	}
	if c.Webhook.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Webhook.Listen); err != nil {
			bad("webhook.listen", "%q is not host:port: %v", c.Webhook.Listen, err)
		}
		if c.Webhook.TokenFile == "" {
			bad("webhook.token_file", "required with webhook.listen")
		}
		if !c.Webhook.Insecure && (c.Webhook.TLS.CertFile == "" || c.Webhook.TLS.KeyFile == "") {
			bad("webhook.tls.cert_file", "webhook.tls.cert_file and key_file are required with webhook.listen (Event Grid needs HTTPS); insecure: true serves plain HTTP")
		}
	}
	switch c.Provider {
	case ProviderAzure:
		a := c.Azure
		for key, v := range map[string]string{"subscription_id": a.SubscriptionID, "resource_group": a.ResourceGroup,
			"route_server": a.RouteServer, "scale_set": a.ScaleSet} {
			if v == "" {
				bad("azure."+key, "required with provider azure")
			}
		}
		if a.MaxPeers < 1 || a.MaxPeers > 1000 {
			bad("azure.max_peers", "%d is out of range 1..1000", a.MaxPeers)
		}
	case ProviderAWS:
		a := c.AWS
		if a.Region == "" {
			bad("aws.region", "required with provider aws")
		}
		if len(a.Endpoints) == 0 {
			bad("aws.endpoints", "at least one route-server endpoint ID (rse-...) is required")
		}
		for i, e := range a.Endpoints {
			if !endpointRE.MatchString(e) {
				bad(fmt.Sprintf("aws.endpoints[%d]", i), "%q is not a route-server endpoint ID (rse-...)", e)
			}
		}
		if a.AutoScalingGroup == "" {
			bad("aws.auto_scaling_group", "required with provider aws")
		}
		if a.Liveness != "bfd" && a.Liveness != "bgp-keepalive" {
			bad("aws.liveness", "%q is not bfd or bgp-keepalive", a.Liveness)
		}
	case "":
		bad("provider", "required: azure or aws")
	default:
		bad("provider", "%q is not azure or aws", c.Provider)
	}
}
