package alerts

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"time"
)

// Config is the alerts section: where each transition (and optionally
// path changes, failed actions and sync refusals) is posted.
type Config struct {
	// Events to send: transition (default), path, action_failed,
	// sync_refusal.
	Events  []string      `yaml:"events"`
	Queue   int           `yaml:"queue"`   // per target, default 256: the oldest is dropped past it
	Retries int           `yaml:"retries"` // more attempts after a failure, default 5
	Backoff time.Duration `yaml:"backoff"` // first wait before a retry, doubling, default 1s
	Timeout time.Duration `yaml:"timeout"` // one attempt, default 5s
	Targets []Target      `yaml:"targets"`
}

// Target is one destination.
type Target struct {
	Name string `yaml:"name"`
	// Type is webhook (generic JSON), slack, teams or smtp.
	Type string `yaml:"type"`
	// URLFile holds the webhook's URL (Slack and Teams URLs are secrets).
	URLFile string `yaml:"url_file"`
	// smtp
	Server       string   `yaml:"server"` // host:port
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
}

// Event kinds of Config.Events.
const (
	EventTransition   = "transition"
	EventPath         = "path"
	EventActionFailed = "action_failed"
	EventSyncRefusal  = "sync_refusal"
)

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.Events = []string{EventTransition}
	c.Queue = 256
	c.Retries = 5
	c.Backoff = time.Second
	c.Timeout = 5 * time.Second
}

// Check implements config.Checker.
func (c *Config) Check(report func(key, msg string)) {
	for i, e := range c.Events {
		if !slices.Contains([]string{EventTransition, EventPath, EventActionFailed, EventSyncRefusal}, e) {
			report(fmt.Sprintf("events[%d]", i), fmt.Sprintf("must be one of transition, path, action_failed, sync_refusal (got %q)", e))
		}
	}
	if c.Queue < 1 || c.Queue > 100000 {
		report("queue", fmt.Sprintf("must be between 1 and 100000 (got %d)", c.Queue))
	}
	if c.Retries < 0 || c.Retries > 100 {
		report("retries", fmt.Sprintf("must be between 0 and 100 (got %d)", c.Retries))
	}
	if c.Backoff <= 0 {
		report("backoff", "must be greater than 0")
	}
	if c.Timeout <= 0 {
		report("timeout", "must be greater than 0")
	}
	if len(c.Targets) == 0 {
		report("targets", "at least one target is required")
	}
	names := map[string]bool{}
	for i, t := range c.Targets {
		k := func(f string) string { return fmt.Sprintf("targets[%d].%s", i, f) }
		if t.Name == "" {
			report(k("name"), "required")
		} else if names[t.Name] {
			report(k("name"), fmt.Sprintf("%q is used twice", t.Name))
		}
		names[t.Name] = true
		switch t.Type {
		case "webhook", "slack", "teams":
			if !filepath.IsAbs(t.URLFile) {
				report(k("url_file"), "required: an absolute path to a file holding the URL (it is a secret)")
			}
		case "smtp":
			if _, _, err := net.SplitHostPort(t.Server); err != nil {
				report(k("server"), fmt.Sprintf("must be host:port (got %q)", t.Server))
			}
			if t.From == "" {
				report(k("from"), "required")
			}
			if len(t.To) == 0 {
				report(k("to"), "at least one address is required")
			}
			if t.PasswordFile != "" && !filepath.IsAbs(t.PasswordFile) {
				report(k("password_file"), "must be an absolute path")
			}
			if t.Username != "" && t.PasswordFile == "" {
				report(k("password_file"), "required with username")
			}
		default:
			report(k("type"), fmt.Sprintf("must be one of webhook, slack, teams, smtp (got %q)", t.Type))
		}
	}
}

// checkURL refuses what is not an http(s) URL, without echoing it.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("not an http(s) URL")
	}
	return nil
}
