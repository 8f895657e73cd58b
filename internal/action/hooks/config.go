package hooks

import (
	"fmt"
	"time"

	"github.com/batonha/baton/internal/config/rule"
)

// Config is the `hooks:` section: executables run on entering a state.
type Config struct {
	Timeout     time.Duration `yaml:"timeout"` // default 30s
	Active      []string      `yaml:"active"`
	Standby     []string      `yaml:"standby"`
	Fault       []string      `yaml:"fault"`
	Maintenance []string      `yaml:"maintenance"`
}

// SetDefaults fills in defaults on a fresh section (config.Defaulter).
func (c *Config) SetDefaults() { c.Timeout = DefaultTimeout }

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	r := rule.New(report)
	r.Positive("timeout", c.Timeout)
	for _, list := range []struct {
		key   string
		paths []string
	}{{"active", c.Active}, {"standby", c.Standby}, {"fault", c.Fault}, {"maintenance", c.Maintenance}} {
		for i, p := range list.paths {
			r.AbsPath(fmt.Sprintf("%s[%d]", list.key, i), p)
		}
	}
}
