package vip

// SetDefaults fills in defaults on a fresh `vip:` section (config.Defaulter).
func (c *Config) SetDefaults() { *c = c.WithDefaults() }
