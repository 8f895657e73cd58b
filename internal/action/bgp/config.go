// Package bgp implements BGP announcements to route servers.
package bgp

// Config is the `bgp:` section of baton.yaml.
type Config struct {
	Enabled bool `yaml:"enabled"`
}

// SetDefaults fills in defaults on a fresh section (config.Defaulter).
func (c *Config) SetDefaults() {}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {}
