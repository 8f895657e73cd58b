package hostevents

import (
	"fmt"
	"net/url"
	"time"
)

// Config is the `events:` section of baton.yaml: planned host events
// (Azure Scheduled Events, AWS instance metadata) drain the node first.
type Config struct {
	Cloud string `yaml:"cloud"` // aws|azure
	// Endpoint is the instance metadata service's base URL, default
	// http://169.254.169.254 (tests point it at an emulator).
	Endpoint string `yaml:"endpoint"`
	// Poll is how often the metadata service is read, default 1s.
	Poll time.Duration `yaml:"poll"`
	// Timeout bounds one metadata request, default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// Resume leaves MAINTENANCE by itself once the event that put the
	// node there is over (default false: an operator does).
	Resume bool `yaml:"resume"`
	// VMName is this VM as Azure's Scheduled Events name it in Resources;
	// default: the compute name the metadata service reports.
	VMName string `yaml:"vm_name"`
}

// DefaultEndpoint is the link-local metadata address of both clouds.
const DefaultEndpoint = "http://169.254.169.254"

// SetDefaults fills in defaults on a fresh `events:` section (config.Defaulter).
func (c *Config) SetDefaults() {
	c.Endpoint = DefaultEndpoint
	c.Poll = time.Second
	c.Timeout = 2 * time.Second
}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	switch c.Cloud {
	case "aws", "azure":
	default:
		report("cloud", fmt.Sprintf("%q is not aws or azure", c.Cloud))
	}
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		report("endpoint", fmt.Sprintf("%q is not an http(s) URL", c.Endpoint))
	}
	if c.Poll < 100*time.Millisecond || c.Poll > time.Minute {
		report("poll", fmt.Sprintf("%s is outside 100ms..1m (Azure gives 30s notice of a preemption)", c.Poll))
	}
	if c.Timeout <= 0 || c.Timeout > 30*time.Second {
		report("timeout", fmt.Sprintf("%s is outside 0..30s", c.Timeout))
	}
	if c.VMName != "" && c.Cloud == "aws" {
		report("vm_name", "only Azure names VMs in its events; remove it for aws")
	}
}
