package addresses

// SetDefaults fills in defaults on a fresh `addresses:` section (config.Defaulter).
func (c *Config) SetDefaults() {}
