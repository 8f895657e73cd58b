package configsync

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// A file exists in two forms. Its local form is the bytes on this node's
// disk. Its canonical form is what travels, is hashed and is compared:
// the content as the node with the lower name would hold it, with every
// per-node line replaced by a placeholder line. The lower-named node's
// swap is the identity; the other node swaps every substitution pair.
// A swap is its own inverse, so local → canonical → local is exact; the
// transform checks that on every file and refuses files where it would
// not hold (a value glued to another).

// placeholder stands, in the canonical form, for one per-node line.
const placeholder = "\x00baton-local-line\x00"

// ErrNotReversible is returned for content whose substitution would not
// round-trip exactly.
var ErrNotReversible = errors.New("substitution would not round-trip exactly")

// swapper swaps the values of the substitution pairs.
type swapper struct {
	flip    bool              // this node is the higher-named one
	counter map[string]string // each value to its counterpart, both ways
	byFirst map[byte][]string // values by first byte, longest first
	pairs   [][2]string       // canonical orientation: (lower node's, higher node's)
}

// newSwapper builds the swapper of node self; m maps self's values to
// the peer's.
func newSwapper(self, peer string, m map[string]string) (*swapper, error) {
	s := &swapper{flip: self > peer, counter: map[string]string{}, byFirst: map[byte][]string{}}
	for _, k := range sortedKeys(m) {
		v := m[k]
		if k == "" || v == "" || k == v {
			continue // reported by Check
		}
		for _, x := range []string{k, v} {
			if _, dup := s.counter[x]; dup {
				return nil, fmt.Errorf("value %q appears in more than one substitution pair", x)
			}
		}
		s.counter[k], s.counter[v] = v, k
		if s.flip {
			s.pairs = append(s.pairs, [2]string{v, k})
		} else {
			s.pairs = append(s.pairs, [2]string{k, v})
		}
	}
	for x := range s.counter {
		s.byFirst[x[0]] = append(s.byFirst[x[0]], x)
	}
	for _, l := range s.byFirst {
		sort.Slice(l, func(i, j int) bool { return len(l[i]) > len(l[j]) || len(l[i]) == len(l[j]) && l[i] < l[j] })
	}
	sort.Slice(s.pairs, func(i, j int) bool { return s.pairs[i][0] < s.pairs[j][0] })
	return s, nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isWord(c byte) bool { return isAlnum(c) || c == '_' || c == '-' }

// startOK reports whether a value may start at i: it must not continue a
// word or a dotted name or address.
func startOK(b []byte, i int) bool {
	return i == 0 || !(isWord(b[i-1]) || b[i-1] == '.')
}

// endOK reports whether a value may end at j ("10.0.0.4:80" and
// "10.0.0.4." match, "10.0.0.45" and "10.0.0.4.1" do not).
func endOK(b []byte, j int) bool {
	if j == len(b) {
		return true
	}
	c := b[j]
	if isWord(c) {
		return false
	}
	return !(c == '.' && j+1 < len(b) && isAlnum(b[j+1]))
}

// swap replaces every whole occurrence of a value with its counterpart,
// in one left-to-right pass.
func (s *swapper) swap(b []byte) []byte {
	if len(s.counter) == 0 {
		return b
	}
	var out []byte
	last := 0
	for i := 0; i < len(b); {
		cands := s.byFirst[b[i]]
		if len(cands) == 0 || !startOK(b, i) {
			i++
			continue
		}
		matched := ""
		for _, v := range cands {
			if bytes.HasPrefix(b[i:], []byte(v)) && endOK(b, i+len(v)) {
				matched = v
				break
			}
		}
		if matched == "" {
			i++
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(b)+16)
		}
		out = append(out, b[last:i]...)
		out = append(out, s.counter[matched]...)
		i += len(matched)
		last = i
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// convert swaps a line if this node flips, checking that it round-trips.
func (s *swapper) convert(line []byte) ([]byte, error) {
	if !s.flip || len(s.counter) == 0 {
		return line, nil
	}
	out := s.swap(line)
	if !bytes.Equal(s.swap(out), line) {
		return nil, fmt.Errorf("%w: line %q", ErrNotReversible, truncate(string(line), 80))
	}
	return out, nil
}

// transform converts one set's files between local and canonical forms.
type transform struct {
	swap  *swapper
	local []*regexp.Regexp
}

func newTransform(self, peer string, subst map[string]string, localLines []string) (*transform, error) {
	sw, err := newSwapper(self, peer, subst)
	if err != nil {
		return nil, err
	}
	t := &transform{swap: sw}
	for _, l := range localLines {
		re, err := regexp.Compile(l)
		if err != nil {
			return nil, fmt.Errorf("compiling local line pattern %q: %w", l, err)
		}
		t.local = append(t.local, re)
	}
	return t, nil
}

// fingerprint identifies what both nodes must agree on for this set.
func (t *transform) fingerprint() string {
	h := sha256.New()
	for _, p := range t.swap.pairs {
		fmt.Fprintf(h, "s%q=%q\n", p[0], p[1])
	}
	for _, re := range t.local {
		fmt.Fprintf(h, "l%q\n", re.String())
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// lines splits b into lines that keep their "\n".
func lines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

func splitEOL(l []byte) (body, eol []byte) {
	if n := len(l); n > 0 && l[n-1] == '\n' {
		return l[:n-1], l[n-1:]
	}
	return l, nil
}

func (t *transform) isLocal(body []byte) bool {
	for _, re := range t.local {
		if re.Match(body) {
			return true
		}
	}
	return false
}

// encode turns local content into the canonical form.
func (t *transform) encode(local []byte) ([]byte, error) {
	if bytes.Contains(local, []byte(placeholder)) {
		return nil, errors.New("file contains baton's per-node line placeholder")
	}
	if len(t.local) == 0 && (!t.swap.flip || len(t.swap.counter) == 0) {
		return local, nil
	}
	out := make([]byte, 0, len(local))
	for _, l := range lines(local) {
		body, eol := splitEOL(l)
		if t.isLocal(body) {
			out = append(append(out, placeholder...), eol...)
			continue
		}
		c, err := t.swap.convert(l)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

// decode turns canonical content into this node's local form, keeping
// the per-node lines of current (this node's file as it is now). They
// fill the placeholders in order; extra ones follow the last placeholder
// (or end the file), placeholders left over are dropped.
func (t *transform) decode(canon, current []byte) ([]byte, error) {
	var locals [][]byte
	if len(t.local) > 0 {
		for _, l := range lines(current) {
			if body, _ := splitEOL(l); t.isLocal(body) {
				locals = append(locals, body)
			}
		}
	}
	if len(t.local) == 0 && (!t.swap.flip || len(t.swap.counter) == 0) {
		if bytes.Contains(canon, []byte(placeholder)) {
			return nil, errors.New("content holds per-node line placeholders but this set has no local_lines")
		}
		return canon, nil
	}
	out := make([]byte, 0, len(canon)+64)
	used, insertAt := 0, -1
	for _, l := range lines(canon) {
		body, eol := splitEOL(l)
		if string(body) == placeholder {
			if used < len(locals) {
				out = append(append(out, locals[used]...), eol...)
				used++
				insertAt = len(out)
			}
			continue
		}
		if bytes.Contains(l, []byte(placeholder)) {
			return nil, errors.New("malformed per-node line placeholder")
		}
		c, err := t.swap.convert(l)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	if used < len(locals) {
		var rest []byte
		for _, l := range locals[used:] {
			rest = append(append(rest, l...), '\n')
		}
		if insertAt < 0 {
			if len(out) > 0 && out[len(out)-1] != '\n' {
				out = append(out, '\n')
			}
			insertAt = len(out)
		} else if insertAt > 0 && out[insertAt-1] != '\n' {
			rest = append([]byte{'\n'}, rest[:len(rest)-1]...)
		}
		out = append(out[:insertAt], append(rest, out[insertAt:]...)...)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
