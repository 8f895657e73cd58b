package sessionsync

import (
	"fmt"
	"net/netip"

	"github.com/batonha/baton/internal/provider/conntrack"
)

// Filter decides which connections are synced.
type Filter struct {
	protos  [256]bool
	include []netip.Prefix
	exclude []netip.Prefix
	marks   []markMatch
	zones   map[uint16]bool
}

// NewFilter compiles the section's filters; extraExclude (the appliances'
// own heartbeat and link addresses) is added to the exclusions.
func NewFilter(c Config, extraExclude []netip.Prefix) (*Filter, error) {
	f := &Filter{}
	for _, p := range c.Protocols {
		n, ok := conntrack.ProtoNumber(p)
		if !ok {
			return nil, fmt.Errorf("sessions.protocols: unknown protocol %q", p)
		}
		f.protos[n] = true
	}
	for _, s := range c.Include {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("sessions.include: %w", err)
		}
		f.include = append(f.include, p)
	}
	for _, s := range c.Exclude {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("sessions.exclude: %w", err)
		}
		f.exclude = append(f.exclude, p)
	}
	f.exclude = append(f.exclude, extraExclude...)
	for _, s := range c.Marks {
		m, err := parseMark(s)
		if err != nil {
			return nil, fmt.Errorf("sessions.marks: %w", err)
		}
		f.marks = append(f.marks, m)
	}
	if len(c.Zones) > 0 {
		f.zones = map[uint16]bool{}
		for _, z := range c.Zones {
			f.zones[uint16(z)] = true
		}
	}
	return f, nil
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Match reports whether e is synced.
func (f *Filter) Match(e *conntrack.Entry) bool {
	if !f.protos[e.Proto] {
		return false
	}
	if f.zones != nil && !f.zones[e.Zone] {
		return false
	}
	if len(f.marks) > 0 {
		ok := false
		for _, m := range f.marks {
			if e.Mark&m.mask == m.value {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, a := range []netip.Addr{e.Orig.Src, e.Orig.Dst, e.Reply.Src, e.Reply.Dst} {
		if inAny(f.exclude, a) {
			return false
		}
	}
	if len(f.include) > 0 && !inAny(f.include, e.Orig.Src) && !inAny(f.include, e.Orig.Dst) {
		return false
	}
	return true
}
