package kvm

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Problem is one inconsistency between the two VMs' wiring.
type Problem struct {
	Pair    int // 1-based interface pair, in document order; 0 for the whole domain
	Message string
}

func (p Problem) String() string {
	if p.Pair == 0 {
		return p.Message
	}
	return fmt.Sprintf("interface #%d: %s", p.Pair, p.Message)
}

type domainDoc struct {
	XMLName    xml.Name   `xml:"domain"`
	Name       string     `xml:"name"`
	Interfaces []ifaceDoc `xml:"devices>interface"`
}

type ifaceDoc struct {
	Type string `xml:"type,attr"`
	MAC  struct {
		Address string `xml:"address,attr"`
	} `xml:"mac"`
	Source struct {
		Bridge  string `xml:"bridge,attr"`
		Network string `xml:"network,attr"`
		Dev     string `xml:"dev,attr"`
	} `xml:"source"`
	VirtualPort *struct {
		Type string `xml:"type,attr"`
	} `xml:"virtualport"`
	VLAN *struct {
		Trunk string `xml:"trunk,attr"`
		Tags  []struct {
			ID         string `xml:"id,attr"`
			NativeMode string `xml:"nativeMode,attr"`
		} `xml:"tag"`
	} `xml:"vlan"`
	Address *struct {
		Type     string `xml:"type,attr"`
		Domain   string `xml:"domain,attr"`
		Bus      string `xml:"bus,attr"`
		Slot     string `xml:"slot,attr"`
		Function string `xml:"function,attr"`
	} `xml:"address"`
}

// iface is an interface reduced to what Check compares.
type iface struct {
	typ, bridge, source, mac string
	ovs                      bool
	vlan                     string // canonical: "", "101", "trunk:101,102"
	pci                      *PCIAddress
}

type domain struct {
	name   string
	ifaces []iface
}

func parseDomain(b []byte, label string) (*domain, error) {
	var d domainDoc
	dec := xml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: reading domain XML: %w", label, err)
	}
	out := &domain{name: strings.TrimSpace(d.Name)}
	if out.name == "" {
		return nil, fmt.Errorf("%s: <domain> has no <name>", label)
	}
	for i, x := range d.Interfaces {
		where := fmt.Sprintf("%s (%s): <interface> #%d", label, out.name, i+1)
		in := iface{typ: x.Type, bridge: x.Source.Bridge, mac: strings.ToLower(x.MAC.Address)}
		in.source = x.Source.Bridge + x.Source.Network + x.Source.Dev
		in.ovs = x.VirtualPort != nil && x.VirtualPort.Type == "openvswitch"
		if x.VLAN != nil {
			var ids []int
			for _, t := range x.VLAN.Tags {
				id, err := strconv.ParseUint(t.ID, 10, 16)
				if err != nil || id > 4095 {
					return nil, fmt.Errorf("%s: <vlan><tag id='%s'/> is not a VLAN ID", where, t.ID)
				}
				ids = append(ids, int(id))
			}
			slices.Sort(ids)
			var s []string
			for _, id := range ids {
				s = append(s, strconv.Itoa(id))
			}
			in.vlan = strings.Join(s, ",")
			if x.VLAN.Trunk == "yes" || len(ids) > 1 {
				in.vlan = "trunk:" + in.vlan
			}
		}
		if a := x.Address; a != nil && a.Type == "pci" {
			var pa PCIAddress
			for _, f := range []struct {
				name, val string
				dst       *int
				max       uint64
			}{{"domain", a.Domain, &pa.Domain, 0xffff}, {"bus", a.Bus, &pa.Bus, 0xff}, {"slot", a.Slot, &pa.Slot, 0x1f}, {"function", a.Function, &pa.Function, 7}} {
				if f.val == "" {
					continue // libvirt's default is 0
				}
				n, err := strconv.ParseUint(f.val, 0, 32)
				if err != nil || n > f.max {
					return nil, fmt.Errorf("%s: <address type='pci'> %s='%s' is not a number in 0..%#x", where, f.name, f.val, f.max)
				}
				*f.dst = int(n)
			}
			in.pci = &pa
		}
		out.ifaces = append(out.ifaces, in)
	}
	return out, nil
}

// Check compares the interfaces of two domain XML documents pair by pair
// (in document order) and reports interfaces whose PCI bus/slot/function
// differ, that sit on different bridges or not on a bridge, that lack an
// openvswitch virtualport, whose VLAN tags differ, that share a MAC, and
// pairs that share a bridge with another pair. The error is for input that
// cannot be read.
func Check(xml1, xml2 []byte) ([]Problem, error) {
	return check("first domain", xml1, "second domain", xml2)
}

// CheckFiles is Check on two files; errors name the file.
func CheckFiles(path1, path2 string) ([]Problem, error) {
	b1, err := os.ReadFile(path1)
	if err != nil {
		return nil, fmt.Errorf("reading domain XML: %w", err)
	}
	b2, err := os.ReadFile(path2)
	if err != nil {
		return nil, fmt.Errorf("reading domain XML: %w", err)
	}
	return check(path1, b1, path2, b2)
}

func check(label1 string, xml1 []byte, label2 string, xml2 []byte) ([]Problem, error) {
	d1, err := parseDomain(xml1, label1)
	if err != nil {
		return nil, err
	}
	d2, err := parseDomain(xml2, label2)
	if err != nil {
		return nil, err
	}
	a, b := d1.name, d2.name
	if a == b {
		a, b = a+" (first)", b+" (second)"
	}
	var ps []Problem
	add := func(pair int, format string, args ...any) {
		ps = append(ps, Problem{Pair: pair, Message: fmt.Sprintf(format, args...)})
	}
	if len(d1.ifaces) == 0 && len(d2.ifaces) == 0 {
		add(0, "neither %s nor %s has an interface", a, b)
	}
	if n1, n2 := len(d1.ifaces), len(d2.ifaces); n1 != n2 {
		add(0, "%s has %d interfaces, %s has %d: every interface needs a partner", a, n1, b, n2)
	}
	bridgeOwner := map[string]int{}
	for i := range min(len(d1.ifaces), len(d2.ifaces)) {
		n := i + 1
		x, y := d1.ifaces[i], d2.ifaces[i]
		for _, v := range []struct {
			vm string
			in iface
		}{{a, x}, {b, y}} {
			if v.in.typ != "bridge" {
				add(n, "%s is type='%s' (source %q), not attached to an Open vSwitch bridge", v.vm, v.in.typ, v.in.source)
			} else if !v.in.ovs {
				add(n, "%s on bridge %s has no <virtualport type='openvswitch'/>", v.vm, v.in.bridge)
			}
			if v.in.pci == nil {
				add(n, "%s has no PCI <address>, so its bus/slot/function cannot be matched", v.vm)
			}
		}
		if x.typ == "bridge" && y.typ == "bridge" && x.bridge != y.bridge {
			add(n, "on different bridges: %s on %s, %s on %s", a, x.bridge, b, y.bridge)
		}
		if x.pci != nil && y.pci != nil && *x.pci != *y.pci {
			add(n, "PCI addresses differ: %s at %s, %s at %s (bus, slot and function must match)", a, x.pci, b, y.pci)
		}
		if x.vlan != y.vlan {
			add(n, "VLAN tags differ: %s %s, %s %s", a, vlanText(x.vlan), b, vlanText(y.vlan))
		}
		if x.mac != "" && x.mac == y.mac {
			add(n, "both VMs use MAC %s", x.mac)
		}
		if x.typ == "bridge" && x.bridge != "" {
			if j, ok := bridgeOwner[x.bridge]; ok {
				add(n, "shares bridge %s with interface #%d: two pairs would be one segment", x.bridge, j)
			} else {
				bridgeOwner[x.bridge] = n
			}
		}
	}
	return ps, nil
}

func vlanText(v string) string {
	if v == "" {
		return "untagged"
	}
	return "tag " + v
}

// Report writes one line per problem, or a success line, and returns an
// error when there is any problem.
func Report(w io.Writer, ps []Problem) error {
	if len(ps) == 0 {
		_, err := fmt.Fprintln(w, "ok: interfaces pair up consistently")
		return err
	}
	for _, p := range ps {
		if _, err := fmt.Fprintln(w, p.String()); err != nil {
			return err
		}
	}
	return fmt.Errorf("kvm check found %d problem(s)", len(ps))
}
