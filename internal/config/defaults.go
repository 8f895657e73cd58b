package config

import (
	"reflect"
	"strconv"
	"time"
)

// Default values, as documented in types.go.
const (
	DefaultPath = "/etc/baton/baton.yaml"

	defaultStateDir          = "/var/lib/baton"
	defaultPriority          = 100
	defaultHeartbeatInterval = time.Second
	defaultHeartbeatMisses   = 3
	defaultHeartbeatListen   = ":5405"
	defaultReplayWindow      = 1024
	defaultChannelListen     = ":5406"
	defaultPeerCheckInterval = time.Second
	defaultPeerCheckTimeout  = 500 * time.Millisecond
	defaultAPISocket         = "/run/baton/baton.sock"
	defaultMetricsListen     = "127.0.0.1:9108"
	// MetricsOff as metrics.listen disables the metrics endpoint.
	MetricsOff = "off"
)

// defaulter is implemented by schema types that have default values. The
// loader calls applyDefaults on every fresh value of the type before
// decoding into it — the whole Config, and each new list element, map
// value or pointer target — so keys present in the file override the
// defaults and keys set explicitly to zero stay zero (and are validated).
type defaulter interface {
	applyDefaults()
}

// derivedDefaulter is implemented by schema types whose defaults depend on
// other keys or on whether a key was given at all. It runs after the file
// and the environment have been applied.
type derivedDefaulter interface {
	deriveDefaults(d *deriver)
}

// deriver gives deriveDefaults the whole configuration and tells which keys
// of the value at hand were set explicitly.
type deriver struct {
	root    *Config
	path    string
	origins map[string]origin
}

// explicit reports whether key (relative to the value being defaulted) was
// given a non-null value in the file or the environment.
func (d *deriver) explicit(key string) bool {
	o, ok := d.origins[joinKey(d.path, key)]
	return ok && !o.null
}

// Default returns the configuration with every default applied and nothing
// else: required keys such as node.name are empty.
func Default() Config {
	var c Config
	applyDefaults(reflect.ValueOf(&c).Elem())
	return c
}

// applyDefaults sets the defaults of v and of every struct inside it,
// innermost first, so a section can override the defaults of its parts.
func applyDefaults(v reflect.Value) {
	if v.Kind() != reflect.Struct || isScalarType(v.Type()) {
		return
	}
	for _, f := range fieldsOf(v.Type()) {
		applyDefaults(v.FieldByIndex(f.index))
	}
	if d, ok := v.Addr().Interface().(defaulter); ok {
		d.applyDefaults()
	}
	if d, ok := v.Addr().Interface().(Defaulter); ok {
		d.SetDefaults()
	}
}

// Defaulter is the exported form of defaulter, for section types that
// live in the package of the subsystem they configure (action/vip,
// provider/bgp, ...): SetDefaults sets defaults on a fresh value.
type Defaulter interface {
	SetDefaults()
}

// deriveDefaults calls deriveDefaults on every value inside v that has it.
func deriveDefaults(root *Config, origins map[string]origin) {
	walk(reflect.ValueOf(root).Elem(), "", func(v reflect.Value, path string) {
		if dd, ok := v.Addr().Interface().(derivedDefaulter); ok {
			dd.deriveDefaults(&deriver{root: root, path: path, origins: origins})
		}
	})
}

// walk calls fn on every struct value inside v (v included), with its key
// path, parents before children.
func walk(v reflect.Value, path string, fn func(v reflect.Value, path string)) {
	switch v.Kind() {
	case reflect.Struct:
		if isScalarType(v.Type()) {
			return
		}
		fn(v, path)
		for _, f := range fieldsOf(v.Type()) {
			walk(v.FieldByIndex(f.index), joinKey(path, f.name), fn)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem(), path, fn)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walk(v.Index(i), joinKey(path, "["+strconv.Itoa(i)+"]"), fn)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			// Map values are not addressable: walk a copy and store it back.
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(iter.Value())
			walk(e, joinKey(path, iter.Key().String()), fn)
			v.SetMapIndex(iter.Key(), e)
		}
	}
}

func (n *Node) applyDefaults() {
	n.Priority = defaultPriority
	n.StateDir = defaultStateDir
}

func (l *Log) applyDefaults() {
	l.Level = "info"
	l.Format = "text"
}

func (h *Heartbeat) applyDefaults() {
	h.Interval = defaultHeartbeatInterval
	h.Misses = defaultHeartbeatMisses
	h.Listen = defaultHeartbeatListen
	h.ReplayWindow = defaultReplayWindow
}

func (c *Channel) applyDefaults() {
	c.Listen = defaultChannelListen
}

// deriveDefaults turns the channel on when an address is given, unless
// enabled was set explicitly.
func (c *Channel) deriveDefaults(d *deriver) {
	if !d.explicit("enabled") {
		c.Enabled = c.Address != ""
	}
}

func (p *PeerCheck) applyDefaults() {
	p.Interval = defaultPeerCheckInterval
	p.Timeout = defaultPeerCheckTimeout
}

// deriveDefaults takes misses from heartbeat.misses unless set.
func (p *PeerCheck) deriveDefaults(d *deriver) {
	if !d.explicit("misses") {
		// An invalid heartbeat.misses is reported there; do not repeat it.
		p.Misses = max(1, d.root.Heartbeat.Misses)
	}
}

func (a *API) applyDefaults() {
	a.Socket = defaultAPISocket
}

func (m *Metrics) applyDefaults() {
	m.Listen = defaultMetricsListen
}

func (l *Link) applyDefaults() {
	l.Listen = ":5407"
}
