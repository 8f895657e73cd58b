package configsync

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Defaults of the `sync:` section.
const (
	DefaultInterval    = 2 * time.Minute
	DefaultDebounce    = 100 * time.Millisecond
	DefaultMaxFileSize = 4 << 20
	DefaultBackups     = 5
	DefaultTimeout     = 30 * time.Second
	// MaxFileSizeLimit is the largest max_file_size accepted: a file
	// travels in one peer-link frame.
	MaxFileSizeLimit = 15 << 20
)

// Config is the `sync:` section of baton.yaml.
type Config struct {
	// Enabled turns the section off without removing it (default true).
	Enabled bool `yaml:"enabled"`
	// Interval is the periodic full comparison with the peer (default 2m).
	Interval time.Duration `yaml:"interval"`
	// Debounce is how long a burst of file-system events settles before
	// the changed files are read and sent (default 100ms).
	Debounce time.Duration `yaml:"debounce"`
	// MaxFileSize is the largest file, in bytes, that is synced (default
	// 4 MiB, at most 15 MiB). Larger files are refused on both sides.
	MaxFileSize int `yaml:"max_file_size"`
	// Backups is how many previous versions of each file are kept under
	// node.state_dir/configsync/backup (default 5).
	Backups int `yaml:"backups"`
	// Timeout bounds each validate and apply command (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// Substitute maps a value of this node (an address, a host name) to
	// the peer's corresponding value. When a file crosses to the peer every
	// whole-word occurrence of either value is swapped for the other, so
	// a file sent A→B→A comes back byte-identical. Both nodes list the
	// same pairs, each from its own side.
	Substitute map[string]string `yaml:"substitute"`
	// Sets are the groups of files kept identical.
	Sets []Set `yaml:"sets"`
}

// Set is one group of synced files sharing a validate and an apply
// command.
type Set struct {
	// Name identifies the set on both nodes ([a-z0-9-]{1,32}).
	Name string `yaml:"name"`
	// Dir is the set's root; every synced file lives under it, and its
	// path relative to Dir is the same on both nodes.
	Dir string `yaml:"dir"`
	// Files are glob patterns relative to Dir (filepath.Match syntax,
	// default ["*"]).
	Files []string `yaml:"files"`
	// Exclude are glob patterns relative to Dir of per-node files never
	// synced.
	Exclude []string `yaml:"exclude"`
	// LocalLines are regular expressions; a line matching one of them is
	// per node: it is neither sent nor overwritten.
	LocalLines []string `yaml:"local_lines"`
	// Substitute adds pairs to the section's substitutions for this set.
	Substitute map[string]string `yaml:"substitute"`
	// Validate runs on a received file before it is put in place, with
	// {file} replaced by the temporary file's path (e.g. "nft -c -f
	// {file}"). A non-zero exit refuses the file.
	Validate string `yaml:"validate"`
	// Apply runs after a received file is in place, with {file} replaced
	// by its path (e.g. "nft -f {file}", "systemctl reload haproxy"). If
	// it fails the previous file is restored and Apply runs again.
	Apply string `yaml:"apply"`
	// Timeout bounds this set's commands (default: the section's timeout).
	Timeout time.Duration `yaml:"timeout"`
	// Mode is the permission of every file received into the set, in
	// octal (e.g. "0640"). Without it a received file keeps the mode of
	// the file it replaces; a new file takes the peer's mode without
	// group and world write. The peer's mode is never applied as-is.
	Mode string `yaml:"mode"`
	// Owner is the owner of every file received into the set, "user",
	// "user:group" or numeric ids. Without it a received file keeps the
	// owner of the file it replaces; a new file is baton's own.
	Owner string `yaml:"owner"`
}

// SetDefaults fills in defaults on a fresh section (config.Defaulter).
func (c *Config) SetDefaults() {
	c.Enabled = true
	c.Interval = DefaultInterval
	c.Debounce = DefaultDebounce
	c.MaxFileSize = DefaultMaxFileSize
	c.Backups = DefaultBackups
	c.Timeout = DefaultTimeout
}

// SetDefaults fills in defaults on a fresh set (config.Defaulter).
func (s *Set) SetDefaults() {
	s.Files = []string{"*"}
}

var setNameRe = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	if c.Interval < time.Second {
		report("interval", "must be at least 1s")
	}
	if c.Debounce < 0 || c.Debounce > time.Minute {
		report("debounce", "must be between 0 and 1m")
	}
	if c.MaxFileSize < 1 || c.MaxFileSize > MaxFileSizeLimit {
		report("max_file_size", fmt.Sprintf("must be between 1 and %d bytes", MaxFileSizeLimit))
	}
	if c.Backups < 0 || c.Backups > 100 {
		report("backups", "must be between 0 and 100")
	}
	if c.Timeout <= 0 {
		report("timeout", "must be positive")
	}
	checkSubstitute("substitute", c.Substitute, report)
	if c.Enabled && len(c.Sets) == 0 {
		report("sets", "at least one set is required")
	}
	names := map[string]bool{}
	for i, s := range c.Sets {
		key := func(k string) string { return fmt.Sprintf("sets[%d].%s", i, k) }
		if !setNameRe.MatchString(s.Name) {
			report(key("name"), "must match [a-z0-9-]{1,32}")
		} else if names[s.Name] {
			report(key("name"), fmt.Sprintf("duplicate set name %q", s.Name))
		}
		names[s.Name] = true
		if s.Dir == "" {
			report(key("dir"), "is required")
		} else if !filepath.IsAbs(s.Dir) || filepath.Clean(s.Dir) == "/" {
			report(key("dir"), "must be an absolute path other than /")
		}
		if len(s.Files) == 0 {
			report(key("files"), "at least one pattern is required")
		}
		for j, p := range s.Files {
			checkPattern(fmt.Sprintf("sets[%d].files[%d]", i, j), p, report)
		}
		for j, p := range s.Exclude {
			checkPattern(fmt.Sprintf("sets[%d].exclude[%d]", i, j), p, report)
		}
		for j, re := range s.LocalLines {
			if _, err := regexp.Compile(re); err != nil {
				report(fmt.Sprintf("sets[%d].local_lines[%d]", i, j), fmt.Sprintf("invalid regular expression: %v", err))
			}
		}
		checkSubstitute(key("substitute"), s.Substitute, report)
		if _, err := newSwapper(node0, node1, mergeMaps(c.Substitute, s.Substitute)); err != nil && len(s.Substitute) > 0 {
			report(key("substitute"), err.Error())
		}
		if s.Timeout < 0 {
			report(key("timeout"), "must not be negative")
		}
		if _, err := parseMode(s.Mode); err != nil {
			report(key("mode"), err.Error())
		}
		if _, err := parseOwner(s.Owner); err != nil {
			report(key("owner"), err.Error())
		}
		for _, cmd := range []struct{ k, v string }{{"validate", s.Validate}, {"apply", s.Apply}} {
			if strings.ContainsAny(cmd.v, "\n\x00") {
				report(key(cmd.k), "must be one line")
			}
		}
	}
}

// Placeholder node names for checking substitutions without knowing the
// nodes: the orientation does not change whether pairs conflict.
const node0, node1 = "a", "b"

func checkSubstitute(key string, m map[string]string, report func(key, msg string)) {
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch {
		case k == "" || v == "":
			report(key, fmt.Sprintf("pair %q: %q: both values must be non-empty", k, v))
		case k == v:
			report(key, fmt.Sprintf("pair %q: %q: the values must differ", k, v))
		case strings.ContainsAny(k+v, "\n\x00"):
			report(key, fmt.Sprintf("pair %q: %q: values must not contain newlines", k, v))
		}
	}
	if _, err := newSwapper(node0, node1, m); err != nil {
		report(key, err.Error())
	}
}

func checkPattern(key, p string, report func(key, msg string)) {
	if p == "" || filepath.IsAbs(p) || filepath.Clean(p) != p || strings.HasPrefix(p, "..") {
		report(key, "must be a clean relative pattern inside the set's dir")
		return
	}
	if _, err := filepath.Match(p, ""); err != nil {
		report(key, fmt.Sprintf("invalid pattern: %v", err))
	}
}

func mergeMaps(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
