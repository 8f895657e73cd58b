package probe

import (
	"time"

	"github.com/batonha/baton/internal/config/rule"
)

// Config is the `probe:` section: the load-balancer health-probe
// responder.
type Config struct {
	Mode             string        `yaml:"mode"`              // http|tcp|off, default http
	Listen           string        `yaml:"listen"`            // default ":8444"
	UnconnectedAfter time.Duration `yaml:"unconnected_after"` // default 30s
}

// ModeOff as probe.mode turns the responder off.
const ModeOff = "off"

// SetDefaults fills in defaults on a fresh section (config.Defaulter).
func (c *Config) SetDefaults() {
	c.Mode = ModeHTTP
	c.Listen = DefaultListen
	c.UnconnectedAfter = DefaultUnconnectedAfter
}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	r := rule.New(report)
	if r.OneOf("mode", c.Mode, ModeHTTP, ModeTCP, ModeOff) && c.Mode != ModeOff {
		r.ListenAddr("listen", c.Listen)
	}
	r.Positive("unconnected_after", c.UnconnectedAfter)
}
