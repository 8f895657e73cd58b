package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds how many YAML nodes one decode visits, so that aliases
// cannot blow a small document up into a huge walk.
const maxNodes = 100_000

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// field is one key of a struct in the schema.
type field struct {
	name  string // yaml key
	index []int  // for reflect.Value.FieldByIndex; inline structs flatten
}

// fieldsOf lists the keys of struct type t from their yaml tags, in
// declaration order. Fields tagged "-" are skipped, fields tagged ",inline"
// contribute their own keys, and untagged fields use the lower-cased name
// as yaml.v3 does.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for _, sub := range fieldsOf(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name: name, index: []int{i}})
	}
	return out
}

// isScalarType reports whether values of t are written as one YAML scalar.
func isScalarType(t reflect.Type) bool {
	if t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// joinKey appends a key to a path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	if key == "" || strings.HasPrefix(key, "[") {
		return path + key
	}
	return path + "." + key
}

// parentPath strips the last key or index from a path: "a.b[1].c" →
// "a.b[1]" → "a.b" → "a" → "".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// origin says where a key was set.
type origin struct {
	source string // file name or "env BATON_X"
	line   int    // 0 for the environment
	null   bool   // the key was present with a null value: not set
}

// decoder walks a yaml.Node tree against a Go value, strictly: unknown
// keys, duplicate keys and values of the wrong shape are errors, and every
// error is collected rather than stopping at the first.
type decoder struct {
	source  string            // file name, or "env BATON_X"
	env     bool              // values come from the environment: no lines
	origins map[string]origin // key path → where it was set
	bad     map[string]bool   // key paths whose value could not be decoded
	errs    *Errors
	visited int
}

func (d *decoder) line(n *yaml.Node) int {
	if d.env {
		return 0
	}
	return n.Line
}

// fail reports that the value at path could not be decoded; validation
// then stays quiet about path and what is below it.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.note(n, path, format, args...)
}

// note reports a problem without marking path as undecodable.
func (d *decoder) note(n *yaml.Node, path, format string, args ...any) {
	*d.errs = append(*d.errs, FieldError{
		Path: path, Line: d.line(n), Source: d.source, Msg: fmt.Sprintf(format, args...),
	})
}

// record notes where path was set.
func (d *decoder) record(n *yaml.Node, path string) {
	d.origins[path] = origin{source: d.source, line: d.line(n), null: isNull(n)}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindName describes a node for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// newValue returns a fresh value of type t with its defaults applied.
func newValue(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	applyDefaults(v)
	return v
}

// decode sets v (addressable) from n. A null node leaves v as it is.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.budget(n, path) {
		return
	}
	n = resolve(n)
	if n.Kind == yaml.AliasNode {
		d.fail(n, path, "alias nests too deeply")
		return
	}
	if isNull(n) {
		return
	}
	t := v.Type()
	if t == durationType {
		d.decodeDuration(n, v, path)
		return
	}
	if pu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value, got %s", kindName(n))
			return
		}
		if err := pu.UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "invalid value %q: %v", n.Value, err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Pointer:
		if v.IsNil() {
			p := reflect.New(t.Elem())
			p.Elem().Set(newValue(t.Elem()))
			v.Set(p)
		}
		d.decode(n, v.Elem(), path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		if n.Kind == yaml.MappingNode && len(n.Content) == 0 {
			v.SetZero() // {} and an absent map mean the same: no entries
			return
		}
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string, got %s", kindName(n))
			return
		}
		if strings.Contains(n.Value, "${") {
			d.fail(n, path, "%q: baton does not expand ${VAR} in its configuration; set the key from the environment instead (%s), or for node.name leave it empty to use the host name", n.Value, envVarHint(path))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected true or false, got %s", kindName(n))
			return
		}
		switch strings.ToLower(n.Value) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.fail(n, path, "expected true or false, got %q", n.Value)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := scalarInt(n)
		if !ok {
			d.fail(n, path, "expected an integer, got %s", kindName(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "%d is out of range", i)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := scalarInt(n)
		if !ok || i < 0 {
			d.fail(n, path, "expected a non-negative integer, got %s", kindName(n))
			return
		}
		if v.OverflowUint(uint64(i)) {
			d.fail(n, path, "%d is out of range", i)
			return
		}
		v.SetUint(uint64(i))
	case reflect.Float32, reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!float" && tag != "!!int") || n.Decode(&f) != nil {
			d.fail(n, path, "expected a number, got %s", kindName(n))
			return
		}
		if v.OverflowFloat(f) {
			d.fail(n, path, "%v is out of range", f)
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n, path, "cannot decode into Go type %s", t)
	}
}

// scalarInt reads an integer scalar; quoted strings are not integers.
func scalarInt(n *yaml.Node) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, false
	}
	var i int64
	if err := n.Decode(&i); err != nil {
		return 0, false
	}
	return i, true
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a duration such as 100ms or 1s, got %s", kindName(n))
		return
	}
	s := strings.TrimSpace(n.Value)
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		d.fail(n, path, "duration %s has no unit: write it like 100ms, 1s or 2m", s)
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.fail(n, path, "invalid duration %q: write it like 100ms, 1s or 2m", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	byName := make(map[string]field, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	// Merge keys first, so that the mapping's own keys override them.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			d.decodeMerge(n.Content[i+1], v, path)
		}
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.note(k, path, "keys must be plain names, got %s", kindName(k))
			continue
		}
		key := joinKey(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(k, key, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[k.Value] = d.line(k)
		f, ok := byName[k.Value]
		if !ok {
			msg := "unknown key"
			if s := suggest(k.Value, names(fields)); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.fail(k, key, "%s", msg)
			continue
		}
		d.forget(key)
		d.origins[key] = origin{source: d.source, line: d.line(k), null: isNull(resolve(val))}
		d.decode(val, v.FieldByIndex(f.index), key)
	}
}

// budget counts a visited node and reports false, once with an error,
// when the document has grown past maxNodes.
func (d *decoder) budget(n *yaml.Node, path string) bool {
	d.visited++
	if d.visited > maxNodes {
		if d.visited == maxNodes+1 {
			d.fail(n, path, "document too large (more than %d nodes after expanding aliases)", maxNodes)
		}
		return false
	}
	return true
}

// decodeMerge applies a YAML merge ("<<: *base") into struct v.
func (d *decoder) decodeMerge(n *yaml.Node, v reflect.Value, path string) {
	if !d.budget(n, path) {
		return
	}
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		d.decodeStruct(n, v, path)
	case yaml.SequenceNode:
		// Earlier mappings in the list take precedence: apply them last.
		for i := len(n.Content) - 1; i >= 0; i-- {
			d.decodeMerge(n.Content[i], v, path)
		}
	default:
		d.fail(n, path, "merge (<<) needs a mapping or a list of mappings, got %s", kindName(n))
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		v.SetZero() // "[]" and an absent key mean the same: nothing
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		key := fmt.Sprintf("%s[%d]", path, i)
		e := newValue(v.Type().Elem())
		d.record(item, key)
		d.decode(item, e, key)
		s = reflect.Append(s, e)
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.fail(n, path, "cannot decode into Go type %s", t)
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.note(k, path, "keys must be plain names, got %s", kindName(k))
			continue
		}
		key := joinKey(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(k, key, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[k.Value] = d.line(k)
		d.record(k, key)
		e := newValue(t.Elem())
		d.decode(val, e, key)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
	}
	v.Set(m)
}

// forget drops what is known about path and everything below it, before
// it is set anew.
func (d *decoder) forget(path string) {
	// A key below path is only ever recorded after path itself, so when
	// path is unknown there is nothing to scan for.
	if _, ok := d.origins[path]; !ok {
		return
	}
	for p := range d.origins {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			delete(d.origins, p)
		}
	}
}

func names(fields []field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}

// suggest returns the candidate closest to s when it is close enough to be
// a likely typo, or "".
func suggest(s string, candidates []string) string {
	if len(s) > 64 {
		return "" // not a typo of a short key; and keep the work bounded
	}
	best, bestDist := "", math.MaxInt
	for _, c := range candidates {
		if dist := editDistance(strings.ToLower(s), strings.ToLower(c)); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if bestDist <= max(1, min(3, len(s)/3)) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
