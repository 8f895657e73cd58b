package routes

import (
	"time"

	"github.com/batonha/baton/internal/config/rule"
)

// SetDefaults fills in defaults on a fresh `routes:` section (config.Defaulter).
func (c *Config) SetDefaults() { c.Reconcile = 30 * time.Second }

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	v := *c
	if v.StateDir == "" {
		v.StateDir = "/" // the daemon uses node.state_dir
	}
	v.rules(rule.New(report))
}
