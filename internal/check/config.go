package check

import (
	"regexp"
	"strings"
	"time"

	"github.com/batonha/baton/internal/config/rule"
)

// Config is one entry of the `checks:` list: a local health check whose
// failure moves the node to FAULT.
type Config struct {
	Name      string        `yaml:"name"`      // required, unique
	Type      string        `yaml:"type"`      // exec|interface|tcp|http
	Command   []string      `yaml:"command"`   // exec: argv, exit 0 = healthy
	Interface string        `yaml:"interface"` // interface: name whose operstate must be up
	Target    string        `yaml:"target"`    // tcp: host:port; http: URL
	Interval  time.Duration `yaml:"interval"`  // default 1s
	Timeout   time.Duration `yaml:"timeout"`   // default 1s
	Rise      int           `yaml:"rise"`      // successes to become healthy, default 2
	Fall      int           `yaml:"fall"`      // failures to become unhealthy, default 3
}

// SetDefaults fills in defaults on a fresh entry (config.Defaulter).
func (c *Config) SetDefaults() {
	c.Interval = DefaultInterval
	c.Timeout = DefaultTimeout
	c.Rise = DefaultRise
	c.Fall = DefaultFall
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)

// Check reports every problem with a key relative to the entry
// (config.Checker). Unique names across the list are the loader's rule.
func (c *Config) Check(report func(key, msg string)) {
	r := rule.New(report)
	r.Pattern("name", c.Name, nameRe, "1 to 63 letters, digits, '.', '_' or '-'")
	if r.OneOf("type", c.Type, "exec", "interface", "tcp", "http") {
		switch c.Type {
		case "exec":
			if len(c.Command) == 0 || strings.TrimSpace(c.Command[0]) == "" {
				r.Errorf("command", "required for exec checks: the program and its arguments, as a list")
			}
		case "interface":
			r.InterfaceName("interface", c.Interface)
		case "tcp":
			r.DialAddr("target", c.Target)
		case "http":
			r.HTTPURL("target", c.Target)
		}
		// A key meant for another type is a mistake worth reporting.
		if c.Type != "exec" && len(c.Command) > 0 {
			r.Errorf("command", "applies only to exec checks (type is %s)", c.Type)
		}
		if c.Type != "interface" && c.Interface != "" {
			r.Errorf("interface", "applies only to interface checks (type is %s)", c.Type)
		}
		if (c.Type == "exec" || c.Type == "interface") && c.Target != "" {
			r.Errorf("target", "applies only to tcp and http checks (type is %s)", c.Type)
		}
	}
	intervalOK := r.Positive("interval", c.Interval)
	if r.Positive("timeout", c.Timeout) && intervalOK && c.Timeout > c.Interval {
		r.Errorf("timeout", "must not exceed interval %s (got %s)", c.Interval, c.Timeout)
	}
	r.AtLeast("rise", c.Rise, 1)
	r.AtLeast("fall", c.Fall, 1)
}
