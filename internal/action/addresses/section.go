package addresses

import "strings"

// SetDefaults fills in defaults on a fresh `addresses:` section (config.Defaulter).
func (c *Config) SetDefaults() {}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	for _, err := range c.Validate() {
		key, msg, ok := strings.Cut(strings.TrimPrefix(err.Error(), "addresses."), ": ")
		if !ok {
			key, msg = "", err.Error()
		}
		report(key, msg)
	}
}
