package sessionsync

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/batonha/baton/internal/provider/conntrack"
)

// Filter decides which connections are synced. It runs once per kernel
// event on the active node, so IPv4 prefixes are also kept as masks.
type Filter struct {
	protos  [256]bool
	include prefixSet
	exclude prefixSet
	marks   []markMatch
	zones   map[uint16]bool
}

// prefixSet is a list of prefixes with the IPv4 ones as (address, mask)
// pairs as well.
type prefixSet struct {
	all []netip.Prefix
	v4  []v4net
}

type v4net struct{ addr, mask uint32 }

func (s *prefixSet) add(p netip.Prefix) {
	s.all = append(s.all, p)
	if p.Addr().Is4() {
		a := p.Addr().As4()
		mask := ^uint32(0)
		if p.Bits() < 32 {
			mask = ^(^uint32(0) >> p.Bits())
		}
		s.v4 = append(s.v4, v4net{addr: binary.BigEndian.Uint32(a[:]) & mask, mask: mask})
	}
}

func (s *prefixSet) empty() bool { return len(s.all) == 0 }

// contains reports whether a lies in one of the prefixes.
func (s *prefixSet) contains(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		for _, n := range s.v4 {
			if x&n.mask == n.addr {
				return true
			}
		}
		return false
	}
	for _, p := range s.all {
		if p.Contains(a) {
			return true
		}
	}
	return false
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
		f.include.add(p)
	}
	for _, s := range c.Exclude {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("sessions.exclude: %w", err)
		}
		f.exclude.add(p)
	}
	for _, p := range extraExclude {
		f.exclude.add(p.Masked())
	}
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
	if f.exclude.contains(e.Orig.Src) || f.exclude.contains(e.Orig.Dst) ||
		f.exclude.contains(e.Reply.Src) || f.exclude.contains(e.Reply.Dst) {
		return false
	}
	if !f.include.empty() && !f.include.contains(e.Orig.Src) && !f.include.contains(e.Orig.Dst) {
		return false
	}
	return true
}
