package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/batonha/baton/internal/action/bgp"
	"github.com/batonha/baton/internal/config/rule"
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
// a message, best through config/rule so that the same problem reads the
// same everywhere; the loader adds the full key path and the YAML line.
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
	*rule.Report         // the rules, reporting through errorf
	root         *Config // the whole configuration, for rules across sections
	path         string  // key path of the value being validated
	st           *validationState
}

type validationState struct {
	origins map[string]origin
	bad     map[string]bool // keys that failed to decode: no more errors for them
	source  string          // where a key with no recorded origin lives
	errs    Errors
}

var (
	nodeNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)
	pathNameRe = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
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
			x.validate(newValidator(c, path, st))
		}
		if x, ok := v.Addr().Interface().(Checker); ok {
			vd := newValidator(c, path, st)
			x.Check(func(key, msg string) { vd.errorf(key, "%s", msg) })
		}
	})
	st.errs.sort()
	return st.errs
}

func newValidator(root *Config, path string, st *validationState) *validator {
	v := &validator{root: root, path: path, st: st}
	v.Report = rule.New(func(key, msg string) { v.errorf(key, "%s", msg) })
	return v
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
	v.Pattern("name", n.Name, nodeNameRe, "1 to 63 letters, digits, '.', '_' or '-'")
	v.IntRange("priority", n.Priority, 1, 254)
	if n.PreemptDelay < 0 {
		v.errorf("preempt_delay", "must not be negative (got %s)", n.PreemptDelay)
	}
	v.AbsPath("state_dir", n.StateDir)
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
	v.OneOf("level", l.Level, "debug", "info", "warn", "error")
	v.OneOf("format", l.Format, "text", "json")
}

func (h *Heartbeat) validate(v *validator) {
	v.MinDuration("interval", h.Interval, 10*time.Millisecond)
	v.AtLeast("misses", h.Misses, 1)
	v.ListenAddr("listen", h.Listen)
	v.AbsPath("key_file", h.KeyFile) // whether it exists is checked at start
	for i, f := range h.KeyFiles {
		v.AbsPath(fmt.Sprintf("key_files[%d]", i), f)
	}
	v.IntRange("replay_window", h.ReplayWindow, 64, 4096)
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
		case c.Witness != nil:
			// The witness's lease is the right to be ACTIVE: with no peer
			// it would let one instance of the set announce, not all.
			v.errorf("name", "required by the witness section: its lease lets only its holder be active, so instances with no peer would stop announcing; to elect the one writer of the route server's peerings, use bgp.peerings.witness")
		}
		return
	}
	v.Pattern("name", p.Name, nodeNameRe, "1 to 63 letters, digits, '.', '_' or '-'")
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
	v.Pattern("name", p.Name, pathNameRe, pathNameRule)
	v.DialAddr("address", p.Address)
	if p.Source != "" {
		if _, err := netip.ParseAddr(p.Source); err != nil {
			v.errorf("source", "%q is not an IP address", p.Source)
		}
	}
}

func (p *PeerCheck) validate(v *validator) {
	v.Pattern("name", p.Name, pathNameRe, pathNameRule)
	if v.OneOf("type", p.Type, "icmp", "tcp", "http") && v.Required("target", p.Target) {
		switch p.Type {
		case "icmp":
			if _, err := netip.ParseAddr(p.Target); err != nil {
				v.errorf("target", "icmp target must be an IP address (got %q)", p.Target)
			}
		case "tcp":
			if err := rule.HostPort(p.Target, false); err != nil {
				v.errorf("target", "%v", err)
			}
		case "http":
			u, err := rule.HTTPURL(p.Target)
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
	intervalOK := v.Positive("interval", p.Interval)
	if v.Positive("timeout", p.Timeout) && intervalOK && p.Timeout >= p.Interval {
		v.errorf("timeout", "must be less than interval %s (got %s)", p.Interval, p.Timeout)
	}
	v.AtLeast("misses", p.Misses, 1)
}

func (c *Channel) validate(v *validator) {
	if c.Enabled || c.Listen != "" {
		v.ListenAddr("listen", c.Listen)
	}
	if c.Enabled && c.Address == "" {
		v.errorf("address", "required when the channel is enabled")
	} else if c.Address != "" {
		v.DialAddr("address", c.Address)
	}
}

func (a *API) validate(v *validator) {
	v.AbsPath("socket", a.Socket)
	if a.Listen != "" {
		v.ListenAddr("listen", a.Listen)
		if a.TokenFile == "" {
			v.errorf("token_file", "required when api.listen is set: the TCP listener needs a bearer token")
		}
	}
	if a.TokenFile != "" {
		v.AbsPath("token_file", a.TokenFile)
	}
	if a.Listen != "" && !a.Insecure && (a.TLS.CertFile == "") != (a.TLS.KeyFile == "") {
		v.errorf("tls.key_file", "tls.cert_file and tls.key_file go together")
	}
	if a.Listen != "" && !a.Insecure && a.TLS.CertFile == "" && (v.root == nil || v.root.Link.CertFile == "" || v.root.Link.KeyFile == "") {
		v.errorf("tls.cert_file", "required when api.listen is set (default: link.cert_file from baton keygen); insecure: true serves plain HTTP")
	}
	for _, f := range []struct{ k, p string }{{"tls.cert_file", a.TLS.CertFile}, {"tls.key_file", a.TLS.KeyFile}} {
		if f.p != "" {
			v.AbsPath(f.k, f.p)
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
		v.ListenAddr("listen", m.Listen)
	}
	if m.TokenFile != "" {
		v.AbsPath("token_file", m.TokenFile)
	}
}

func (l *Link) validate(v *validator) {
	if l.Address == "" && l.CAFile == "" && l.CertFile == "" && l.KeyFile == "" {
		if v.root != nil && ((v.root.Sync != nil && v.root.Sync.Enabled) || (v.root.Sessions != nil && v.root.Sessions.Enabled)) {
			v.errorf("address", "required: session and configuration sync talk to the peer over the link (see baton keygen)")
		}
		return
	}
	v.ListenAddr("listen", l.Listen)
	if v.Required("address", l.Address) {
		v.DialAddr("address", l.Address)
	}
	for _, f := range []struct{ key, val string }{{"ca_file", l.CAFile}, {"cert_file", l.CertFile}, {"key_file", l.KeyFile}} {
		if v.Required(f.key, f.val) {
			v.AbsPath(f.key, f.val)
		}
	}
}

// Configured reports whether the peer link has been set up.
func (l *Link) Configured() bool { return l.Address != "" }
