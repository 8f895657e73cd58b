// Package configsync implements configuration file synchronization.
package configsync

// Config is the `sync:` section of baton.yaml.
type Config struct {
	Enabled bool `yaml:"enabled"`
}

// SetDefaults fills in defaults on a fresh section (config.Defaulter).
func (c *Config) SetDefaults() {}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {}
