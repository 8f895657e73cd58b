package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonha/baton/internal/action/bgp"
)

// Adding a section: give Config a field with a yaml tag and give the
// section's types (and the types of its list elements) any of
//
//	applyDefaults()              — set defaults on a fresh value
//	deriveDefaults(d *deriver)   — defaults that depend on other keys
//	validate(v *validator)       — report every problem with v.errorf
//
// The decoder, the BATON_ environment overrides and the validation walk
// find them by reflection; nothing else needs registering.

// Checker is the exported form of validatable, for section types that
// live in the package of the subsystem they configure. Check reports every
// problem with a key relative to the value ("addresses[0].interface") and
// a message; the loader adds the full key path and the YAML line.
type Checker interface {
	Check(report func(key, msg string))
}

// validatable is implemented by schema types that have rules.
type validatable interface {
	validate(v *validator)
}

// validator reports problems with one value of the configuration. Keys
// given to its methods are relative to that value: "interval",
// "paths[1].name".
type validator struct {
	root *Config // the whole configuration, for rules across sections
	path string  // key path of the value being validated
	st   *validationState
}

type validationState struct {
	origins map[string]origin
	bad     map[string]bool // keys that failed to decode: no more errors for them
	source  string          // where a key with no recorded origin lives
	errs    Errors
}

var (
	nodeNameRe  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)
	pathNameRe  = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	checkNameRe = nodeNameRe
	hostnameRe  = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
)

// Validate checks every rule and returns every problem, or nil. It works
// on a Config from Load as well as on one built in code (whose errors then
// carry no file or line).
func (c *Config) Validate() Errors {
	return validateConfig(c, nil, nil, "")
}

func validateConfig(c *Config, origins map[string]origin, bad map[string]bool, source string) Errors {
	st := &validationState{origins: origins, bad: bad, source: source}
	walk(reflect.ValueOf(c).Elem(), "", func(v reflect.Value, path string) {
		if x, ok := v.Addr().Interface().(validatable); ok {
			x.validate(&validator{root: c, path: path, st: st})
		}
		if x, ok := v.Addr().Interface().(Checker); ok {
			vd := &validator{root: c, path: path, st: st}
			x.Check(func(key, msg string) { vd.errorf(key, "%s", msg) })
		}
	})
	st.errs.sort()
	return st.errs
}

// errorf reports a problem with key, placing it where the key (or the
// nearest enclosing key) was set.
func (v *validator) errorf(key, format string, args ...any) {
	path := joinKey(v.path, key)
	for p := path; ; p = parentPath(p) {
		if v.st.bad[p] {
			return // the decoder already said what is wrong here
		}
		if p == "" {
			break
		}
	}
	e := FieldError{Path: path, Source: v.st.source, Msg: fmt.Sprintf(format, args...)}
	for p := path; p != ""; p = parentPath(p) {
		if o, ok := v.st.origins[p]; ok {
			e.Source, e.Line = o.source, o.line
			break
		}
	}
	v.st.errs = append(v.st.errs, e)
}

// required reports an empty value and says whether it was present.
func (v *validator) required(key, val string) bool {
	if strings.TrimSpace(val) == "" {
		v.errorf(key, "required")
		return false
	}
	return true
}

func (v *validator) oneOf(key, val string, allowed ...string) bool {
	if slices.Contains(allowed, val) {
		return true
	}
	if val == "" {
		v.errorf(key, "required: one of %s", strings.Join(allowed, ", "))
	} else {
		v.errorf(key, "must be one of %s (got %q)", strings.Join(allowed, ", "), val)
	}
	return false
}

func (v *validator) intRange(key string, val, lo, hi int) {
	if val < lo || val > hi {
		v.errorf(key, "must be between %d and %d (got %d)", lo, hi, val)
	}
}

func (v *validator) atLeast(key string, val, lo int) {
	if val < lo {
		v.errorf(key, "must be at least %d (got %d)", lo, val)
	}
}

func (v *validator) minDuration(key string, d, lo time.Duration) {
	if d < lo {
		v.errorf(key, "must be at least %s (got %s)", lo, d)
	}
}

func (v *validator) positive(key string, d time.Duration) bool {
	if d <= 0 {
		v.errorf(key, "must be greater than 0 (got %s)", d)
		return false
	}
	return true
}

func (v *validator) pattern(key, val string, re *regexp.Regexp, what string) {
	if v.required(key, val) && !re.MatchString(val) {
		v.errorf(key, "%q is not a valid name: use %s", val, what)
	}
}

// listenAddr checks a local host:port to listen on; port 0 picks a free one.
func (v *validator) listenAddr(key, s string) {
	if v.required(key, s) {
		if err := checkHostPort(s, true); err != nil {
			v.errorf(key, "%v", err)
		}
	}
}

// dialAddr checks a remote host:port to send to.
func (v *validator) dialAddr(key, s string) {
	if v.required(key, s) {
		if err := checkHostPort(s, false); err != nil {
			v.errorf(key, "%v", err)
		}
	}
}

func (v *validator) absPath(key, s string) {
	if v.required(key, s) && !filepath.IsAbs(s) {
		v.errorf(key, "must be an absolute path (got %q)", s)
	}
}

// checkHostPort checks "host:port". A listen address may leave the host
// empty (all addresses) and use port 0; a destination may not.
func checkHostPort(s string, listen bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
			return fmt.Errorf("%q is not host:port: write IPv6 addresses in brackets, as [2001:db8::1]:5405", s)
		}
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" {
		if !listen {
			return fmt.Errorf("%q has no host", s)
		}
	} else if err := checkHost(host); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return checkPort(s, port, listen)
}

func checkPort(s, port string, listen bool) error {
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("%q: port %q is not a number", s, port)
	}
	lo := 1
	if listen {
		lo = 0
	}
	if p < lo || p > 65535 {
		return fmt.Errorf("%q: port %d is out of range %d-65535", s, p, lo)
	}
	return nil
}

func checkHost(host string) error {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if len(host) > 253 || !hostnameRe.MatchString(host) {
		return fmt.Errorf("host %q is neither an IP address nor a valid host name", host)
	}
	return nil
}

// checkHTTPURL checks an http or https URL with a host.
func checkHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q must be an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	if err := checkHost(u.Hostname()); err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(s, p, false); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// checkInterfaceName checks a Linux network interface name.
func checkInterfaceName(s string) error {
	if len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n") {
		return fmt.Errorf("%q is not a valid interface name (at most 15 characters, no '/', ':' or spaces)", s)
	}
	return nil
}

// validate holds the rules that span sections.
func (c *Config) validate(v *validator) {
	if c.Peer.Name != "" && c.Peer.Name == c.Node.Name {
		v.errorf("peer.name", "must differ from node.name (both are %q)", c.Node.Name)
	}
	first := make(map[string]int)
	for i, ch := range c.Checks {
		if ch.Name == "" {
			continue
		}
		if j, dup := first[ch.Name]; dup {
			v.errorf(fmt.Sprintf("checks[%d].name", i), "%q is already the name of checks[%d]", ch.Name, j)
			continue
		}
		first[ch.Name] = i
	}
}

func (n *Node) validate(v *validator) {
	v.pattern("name", n.Name, nodeNameRe, "1 to 63 letters, digits, '.', '_' or '-'")
	v.intRange("priority", n.Priority, 1, 254)
	if n.PreemptDelay < 0 {
		v.errorf("preempt_delay", "must not be negative (got %s)", n.PreemptDelay)
	}
	v.absPath("state_dir", n.StateDir)
	if n.LinkRise < 0 {
		v.errorf("link_rise", "must not be negative (got %s)", n.LinkRise)
	}
	for i, name := range n.TrackInterfaces {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t") {
			v.errorf(fmt.Sprintf("track_interfaces[%d]", i), "%q is not an interface name (1 to 15 characters, no '/' or space)", name)
		}
	}
}

func (l *Log) validate(v *validator) {
	v.oneOf("level", l.Level, "debug", "info", "warn", "error")
	v.oneOf("format", l.Format, "text", "json")
}

func (h *Heartbeat) validate(v *validator) {
	v.minDuration("interval", h.Interval, 10*time.Millisecond)
	v.atLeast("misses", h.Misses, 1)
	v.listenAddr("listen", h.Listen)
	v.absPath("key_file", h.KeyFile) // whether it exists is checked at start
	for i, f := range h.KeyFiles {
		v.absPath(fmt.Sprintf("key_files[%d]", i), f)
	}
	v.intRange("replay_window", h.ReplayWindow, 64, 4096)
}

// absent reports a peer section left out: a node with no peer, allowed
// when it only announces over BGP in active-active mode (Config.validate).
func (p *Peer) absent() bool {
	return p.Name == "" && len(p.Paths) == 0 && len(p.Checks) == 0 && p.Channel.Address == ""
}

func (p *Peer) validate(v *validator) {
	if p.absent() {
		c := v.root
		switch {
		case c.BGP == nil || c.BGP.Mode != bgp.ModeActiveActive:
			v.errorf("name", "required (only a node that announces over BGP with bgp.mode: active-active may have no peer)")
			v.errorf("paths", "at least one path to the peer is required")
		case c.Sessions != nil && c.Sessions.Enabled, c.Sync != nil && c.Sync.Enabled:
			v.errorf("name", "required by sessions and sync (they replicate to the peer)")
		}
		return
	}
	v.pattern("name", p.Name, nodeNameRe, "1 to 63 letters, digits, '.', '_' or '-'")
	if len(p.Paths) == 0 {
		v.errorf("paths", "at least one path to the peer is required")
	}
	// Paths and peer checks share one namespace: both count as paths.
	used := make(map[string]string)
	claim := func(key, name string) {
		if name == "" {
			return
		}
		if prev, dup := used[name]; dup {
			v.errorf(key, "%q is already the name of peer.%s", name, prev)
			return
		}
		used[name] = strings.TrimSuffix(key, ".name")
	}
	for i, path := range p.Paths {
		claim(fmt.Sprintf("paths[%d].name", i), path.Name)
	}
	for i, c := range p.Checks {
		claim(fmt.Sprintf("checks[%d].name", i), c.Name)
	}
}

const pathNameRule = "1 to 32 lower-case letters, digits or '-'"

func (p *Path) validate(v *validator) {
	v.pattern("name", p.Name, pathNameRe, pathNameRule)
	v.dialAddr("address", p.Address)
	if p.Source != "" {
		if _, err := netip.ParseAddr(p.Source); err != nil {
			v.errorf("source", "%q is not an IP address", p.Source)
		}
	}
}

func (p *PeerCheck) validate(v *validator) {
	v.pattern("name", p.Name, pathNameRe, pathNameRule)
	if v.oneOf("type", p.Type, "icmp", "tcp", "http") && v.required("target", p.Target) {
		switch p.Type {
		case "icmp":
			if _, err := netip.ParseAddr(p.Target); err != nil {
				v.errorf("target", "icmp target must be an IP address (got %q)", p.Target)
			}
		case "tcp":
			if err := checkHostPort(p.Target, false); err != nil {
				v.errorf("target", "%v", err)
			}
		case "http":
			u, err := checkHTTPURL(p.Target)
			if err != nil {
				v.errorf("target", "%v", err)
			} else if p.Insecure && u.Scheme != "https" {
				v.errorf("insecure", "applies only to https targets")
			}
		}
	}
	if p.Insecure && p.Type != "http" && p.Type != "" {
		v.errorf("insecure", "applies only to http checks with https targets")
	}
	intervalOK := v.positive("interval", p.Interval)
	if v.positive("timeout", p.Timeout) && intervalOK && p.Timeout >= p.Interval {
		v.errorf("timeout", "must be less than interval %s (got %s)", p.Interval, p.Timeout)
	}
	v.atLeast("misses", p.Misses, 1)
}

func (c *Channel) validate(v *validator) {
	if c.Enabled || c.Listen != "" {
		v.listenAddr("listen", c.Listen)
	}
	if c.Enabled && c.Address == "" {
		v.errorf("address", "required when the channel is enabled")
	} else if c.Address != "" {
		v.dialAddr("address", c.Address)
	}
}

func (c *Check) validate(v *validator) {
	v.pattern("name", c.Name, checkNameRe, "1 to 63 letters, digits, '.', '_' or '-'")
	if v.oneOf("type", c.Type, "exec", "interface", "tcp", "http") {
		switch c.Type {
		case "exec":
			if len(c.Command) == 0 || strings.TrimSpace(c.Command[0]) == "" {
				v.errorf("command", "required for exec checks: the program and its arguments, as a list")
			}
		case "interface":
			if v.required("interface", c.Interface) {
				if err := checkInterfaceName(c.Interface); err != nil {
					v.errorf("interface", "%v", err)
				}
			}
		case "tcp":
			if v.required("target", c.Target) {
				if err := checkHostPort(c.Target, false); err != nil {
					v.errorf("target", "%v", err)
				}
			}
		case "http":
			if v.required("target", c.Target) {
				if _, err := checkHTTPURL(c.Target); err != nil {
					v.errorf("target", "%v", err)
				}
			}
		}
		// A key meant for another type is a mistake worth reporting.
		if c.Type != "exec" && len(c.Command) > 0 {
			v.errorf("command", "applies only to exec checks (type is %s)", c.Type)
		}
		if c.Type != "interface" && c.Interface != "" {
			v.errorf("interface", "applies only to interface checks (type is %s)", c.Type)
		}
		if (c.Type == "exec" || c.Type == "interface") && c.Target != "" {
			v.errorf("target", "applies only to tcp and http checks (type is %s)", c.Type)
		}
	}
	intervalOK := v.positive("interval", c.Interval)
	if v.positive("timeout", c.Timeout) && intervalOK && c.Timeout > c.Interval {
		v.errorf("timeout", "must not exceed interval %s (got %s)", c.Interval, c.Timeout)
	}
	v.atLeast("rise", c.Rise, 1)
	v.atLeast("fall", c.Fall, 1)
}

func (p *Probe) validate(v *validator) {
	if v.oneOf("mode", p.Mode, "http", "tcp", "off") && p.Mode != "off" {
		v.listenAddr("listen", p.Listen)
	}
	v.positive("unconnected_after", p.UnconnectedAfter)
}

func (h *Hooks) validate(v *validator) {
	v.positive("timeout", h.Timeout)
	for _, list := range []struct {
		key   string
		paths []string
	}{{"active", h.Active}, {"standby", h.Standby}, {"fault", h.Fault}, {"maintenance", h.Maintenance}} {
		for i, p := range list.paths {
			v.absPath(fmt.Sprintf("%s[%d]", list.key, i), p)
		}
	}
}

func (a *API) validate(v *validator) {
	v.absPath("socket", a.Socket)
	if a.Listen != "" {
		v.listenAddr("listen", a.Listen)
		if a.TokenFile == "" {
			v.errorf("token_file", "required when api.listen is set: the TCP listener needs a bearer token")
		}
	}
	if a.TokenFile != "" {
		v.absPath("token_file", a.TokenFile)
	}
	if a.Listen != "" && !a.Insecure && (a.TLS.CertFile == "") != (a.TLS.KeyFile == "") {
		v.errorf("tls.key_file", "tls.cert_file and tls.key_file go together")
	}
	if a.Listen != "" && !a.Insecure && a.TLS.CertFile == "" && (v.root == nil || v.root.Link.CertFile == "" || v.root.Link.KeyFile == "") {
		v.errorf("tls.cert_file", "required when api.listen is set (default: link.cert_file from baton keygen); insecure: true serves plain HTTP")
	}
	for _, f := range []struct{ k, p string }{{"tls.cert_file", a.TLS.CertFile}, {"tls.key_file", a.TLS.KeyFile}} {
		if f.p != "" {
			v.absPath(f.k, f.p)
		}
	}
}

// APITLS is the TCP API's certificate and key: api.tls, else the
// cluster's (link); empty when insecure.
func (c *Config) APITLS() TLSFiles {
	if c.API.Insecure {
		return TLSFiles{}
	}
	if c.API.TLS.CertFile != "" {
		return c.API.TLS
	}
	return TLSFiles{CertFile: c.Link.CertFile, KeyFile: c.Link.KeyFile}
}

func (m *Metrics) validate(v *validator) {
	if m.Listen != MetricsOff {
		v.listenAddr("listen", m.Listen)
	}
	if m.TokenFile != "" {
		v.absPath("token_file", m.TokenFile)
	}
}

func (l *Link) validate(v *validator) {
	if l.Address == "" && l.CAFile == "" && l.CertFile == "" && l.KeyFile == "" {
		if v.root != nil && ((v.root.Sync != nil && v.root.Sync.Enabled) || (v.root.Sessions != nil && v.root.Sessions.Enabled)) {
			v.errorf("address", "required: session and configuration sync talk to the peer over the link (see baton keygen)")
		}
		return
	}
	v.listenAddr("listen", l.Listen)
	if v.required("address", l.Address) {
		v.dialAddr("address", l.Address)
	}
	for _, f := range []struct{ key, val string }{{"ca_file", l.CAFile}, {"cert_file", l.CertFile}, {"key_file", l.KeyFile}} {
		if v.required(f.key, f.val) {
			v.absPath(f.key, f.val)
		}
	}
}

// Configured reports whether the peer link has been set up.
func (l *Link) Configured() bool { return l.Address != "" }
