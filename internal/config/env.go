package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that overrides a key:
// heartbeat.interval is BATON_HEARTBEAT_INTERVAL, peer.channel.address is
// BATON_PEER_CHANNEL_ADDRESS.
const EnvPrefix = "BATON_"

// envKey is one key that an environment variable can set.
type envKey struct {
	path  string  // dotted key path, such as "peer.channel.address"
	index [][]int // field indexes from Config down to the key
}

// envKeys lists the environment variable of every leaf key of struct type
// t: each scalar, list or map, named by joining the keys of the enclosing
// sections with "_" and upper-casing. It is an error if two keys would
// share a variable.
func envKeys(t reflect.Type) (map[string]envKey, error) {
	out := make(map[string]envKey)
	var errs []string
	var visit func(t reflect.Type, prefix, path string, index [][]int)
	visit = func(t reflect.Type, prefix, path string, index [][]int) {
		for _, f := range fieldsOf(t) {
			name := prefix + strings.ToUpper(f.name)
			p := joinKey(path, f.name)
			idx := append(slices.Clone(index), f.index)
			ft := t.FieldByIndex(f.index).Type
			if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !isScalarType(ft) {
				visit(ft, name+"_", p, idx)
				continue
			}
			if prev, dup := out[name]; dup {
				errs = append(errs, fmt.Sprintf("%s and %s both map to %s", prev.path, p, name))
				continue
			}
			out[name] = envKey{path: p, index: idx}
		}
	}
	visit(t, EnvPrefix, "", nil)
	if len(errs) > 0 {
		return nil, fmt.Errorf("config schema: ambiguous environment variables: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// applyEnv applies the BATON_ variables in environ ("KEY=value" strings, as
// from os.Environ) to c. Variables without the prefix are ignored; when a
// variable appears twice the last one wins.
func applyEnv(c *Config, environ []string, origins map[string]origin, bad map[string]bool, errs *Errors) {
	vars := make(map[string]string)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		vars[name] = value
	}
	if len(vars) == 0 {
		return
	}
	keys, err := envKeys(reflect.TypeOf(c).Elem())
	if err != nil {
		*errs = append(*errs, FieldError{Msg: err.Error()})
		return
	}
	known := make([]string, 0, len(keys))
	for name := range keys {
		known = append(known, name)
	}
	slices.Sort(known)
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		raw := vars[name]
		source := envSourcePrefix + name
		k, ok := keys[name]
		if !ok {
			msg := "unknown variable: it matches no configuration key"
			if s := suggest(name, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			*errs = append(*errs, FieldError{Source: source, Msg: msg})
			continue
		}
		v := reflect.ValueOf(c).Elem()
		for _, idx := range k.index {
			if v.Kind() == reflect.Pointer {
				if v.IsNil() {
					p := reflect.New(v.Type().Elem())
					p.Elem().Set(newValue(v.Type().Elem()))
					v.Set(p)
				}
				v = v.Elem()
			}
			v = v.FieldByIndex(idx)
		}
		d := &decoder{source: source, env: true, origins: origins, bad: bad, errs: errs}
		n, ok := envNode(d, v.Type(), raw, k.path)
		if !ok {
			continue
		}
		d.forget(k.path)
		origins[k.path] = origin{source: source}
		d.decode(n, v, k.path)
	}
}

// envNode turns a variable's value into the YAML node to decode: scalars
// are taken literally, lists and maps are parsed as YAML flow collections.
func envNode(d *decoder, t reflect.Type, raw, path string) (*yaml.Node, bool) {
	base := t
	if base.Kind() == reflect.Pointer && !isScalarType(base) {
		base = base.Elem()
	}
	lit := &yaml.Node{Kind: yaml.ScalarNode, Value: raw}
	if isScalarType(base) {
		if base.Kind() == reflect.String || base == durationType || reflect.PointerTo(base).Implements(textUnmarshalerType) {
			lit.Tag = "!!str"
			return lit, true
		}
		if strings.TrimSpace(raw) == "" {
			d.fail(lit, path, "empty value (unset the variable to keep the file's value)")
			return nil, false
		}
		return lit, true
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		d.fail(lit, path, "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, false
	}
	if len(doc.Content) == 0 {
		d.fail(lit, path, "empty value (unset the variable to keep the file's value)")
		return nil, false
	}
	n := doc.Content[0]
	switch {
	case base.Kind() == reflect.Slice && resolve(n).Kind != yaml.SequenceNode:
		d.fail(lit, path, "expected a YAML flow sequence such as [a, b], got %s", kindName(n))
		return nil, false
	case base.Kind() == reflect.Map && resolve(n).Kind != yaml.MappingNode:
		d.fail(lit, path, "expected a YAML flow mapping such as {a: b}, got %s", kindName(n))
		return nil, false
	}
	return n, true
}

// envVarHint names the environment variable that sets the key at path
// ("peer.paths[0].address": the variable of the whole list, BATON_PEER_PATHS).
func envVarHint(path string) string {
	if i := strings.IndexByte(path, '['); i >= 0 {
		path = path[:i]
	}
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}
