package vip

import "strings"

// SetDefaults fills in defaults on a fresh `vip:` section (config.Defaulter).
func (c *Config) SetDefaults() { *c = c.WithDefaults() }

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	for _, err := range c.Validate() {
		key, msg, ok := strings.Cut(strings.TrimPrefix(err.Error(), "vip."), ": ")
		if !ok {
			key, msg = "", err.Error()
		}
		report(key, msg)
	}
}
