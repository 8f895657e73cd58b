// Package kvm plans and checks the virtual wiring of an appliance pair on
// KVM with Open vSwitch: one bridge per matched interface pair (VLAN-tagged
// across an uplink when the two VMs run on two servers), libvirt interface
// definitions with stable MACs and identical PCI addresses for both VMs of
// each pair, and the virsh commands that apply them. Check compares two
// domain XML documents (as `virsh dumpxml` prints them) and reports pairs
// that are wired inconsistently.
package kvm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"
)

// Pair describes two appliance VMs and how their interfaces pair up.
type Pair struct {
	// VMs are the libvirt domain names of the two appliances.
	VMs []string `yaml:"vms"`
	// Servers is 1 when both VMs run on one host, 2 when each has its own.
	Servers int `yaml:"servers"`
	// Uplink is the physical NIC that joins the two servers' bridges
	// (servers: 2 only); it carries every pair's VLAN tagged.
	Uplink string `yaml:"uplink"`
	// DatapathType optionally sets the bridges' OVS datapath_type (for
	// example "netdev" for a userspace datapath).
	DatapathType string `yaml:"datapath_type"`
	// Interfaces are the matched interface pairs, in guest order.
	Interfaces []Interface `yaml:"interfaces"`
}

// Interface is one matched pair of VM interfaces.
type Interface struct {
	// Name is the appliance's name for the interface (if1, if2, ...).
	Name string `yaml:"name"`
	// Role is what the segment is for: internal, external, ha, mgmt, ...
	// It becomes part of the bridge name (br1-internal).
	Role string `yaml:"role"`
	// VLAN is the pair's VLAN ID (1..4094). Required with two servers.
	VLAN int `yaml:"vlan"`
	// PCISlot and PCIBus optionally fix the guest PCI address; by default
	// interfaces take free slots on bus 0 from slot 3 upwards.
	PCISlot int `yaml:"pci_slot"`
	PCIBus  int `yaml:"pci_bus"`
	// Model is the NIC model, default virtio.
	Model string `yaml:"model"`
}

// UplinkBridge is the bridge that holds the uplink NIC with two servers.
const UplinkBridge = "br-uplink"

const maxIfName = 15 // Linux and OVS port names

var (
	reVM    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
	reName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	reRole  = regexp.MustCompile(`^[a-z][a-z0-9]*$`)
	reModel = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// LoadPair reads and validates a pair description.
func LoadPair(path string) (*Pair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading pair description: %w", err)
	}
	p, err := ParsePair(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePair decodes YAML (unknown keys are errors) and validates it.
func ParsePair(b []byte) (*Pair, error) {
	var p Pair
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decoding pair description: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// BridgeName is the bridge of the i-th (0-based) interface pair.
func (p *Pair) BridgeName(i int) string {
	return fmt.Sprintf("br%d-%s", i+1, p.Interfaces[i].Role)
}

// Validate reports every inconsistency, each naming its field.
func (p *Pair) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("pair.%s: "+format, append([]any{field}, args...)...))
	}
	if len(p.VMs) != 2 {
		bad("vms", "exactly two libvirt domain names are required (vms: [fw-a, fw-b]), got %d", len(p.VMs))
	}
	for i, vm := range p.VMs {
		if vm == "" {
			bad(fmt.Sprintf("vms[%d]", i), "required: the libvirt domain name (vms: [fw-a, fw-b])")
		} else if !reVM.MatchString(vm) {
			bad(fmt.Sprintf("vms[%d]", i), "%q is not a usable domain name (letters, digits, _ . + -)", vm)
		}
	}
	if len(p.VMs) == 2 && p.VMs[0] != "" && p.VMs[0] == p.VMs[1] {
		bad("vms", "the two VMs must differ (both are %q)", p.VMs[0])
	}
	switch p.Servers {
	case 1:
		if p.Uplink != "" {
			bad("uplink", "only used when servers is 2")
		}
	case 2:
		if p.Uplink == "" {
			bad("uplink", "required when servers is 2: the NIC that joins the servers")
		} else if !reName.MatchString(p.Uplink) || len(p.Uplink) > maxIfName {
			bad("uplink", "%q is not a valid interface name", p.Uplink)
		}
	default:
		bad("servers", "%d: must be 1 (both VMs on one host) or 2", p.Servers)
	}
	if p.DatapathType != "" && !reModel.MatchString(p.DatapathType) {
		bad("datapath_type", "%q is not a datapath type (system, netdev)", p.DatapathType)
	}
	if len(p.Interfaces) == 0 {
		bad("interfaces", "at least one interface pair is required")
	}
	names, vlans, slots := map[string]int{}, map[int]int{}, map[[2]int]int{}
	for i, in := range p.Interfaces {
		f := fmt.Sprintf("interfaces[%d]", i)
		switch {
		case in.Name == "":
			bad(f+".name", "required (if1, if2, ...)")
		case !reName.MatchString(in.Name) || len(in.Name) > maxIfName:
			bad(f+".name", "%q is not a valid interface name", in.Name)
		default:
			if j, dup := names[in.Name]; dup {
				bad(f+".name", "%q is already interfaces[%d]", in.Name, j)
			}
			names[in.Name] = i
		}
		switch {
		case in.Role == "":
			bad(f+".role", "required (internal, external, ha, ...)")
		case !reRole.MatchString(in.Role):
			bad(f+".role", "%q: use lower-case letters and digits", in.Role)
		case len(p.BridgeName(i)) > maxIfName:
			bad(f+".role", "bridge name %q would exceed %d characters", p.BridgeName(i), maxIfName)
		}
		switch {
		case in.VLAN == 0 && p.Servers == 2:
			bad(f+".vlan", "required when servers is 2: each pair needs its own VLAN on the uplink")
		case in.VLAN < 0 || in.VLAN > 4094:
			bad(f+".vlan", "%d is out of range 1..4094", in.VLAN)
		case in.VLAN != 0:
			if j, dup := vlans[in.VLAN]; dup {
				bad(f+".vlan", "%d is already used by interfaces[%d]; each pair needs its own VLAN", in.VLAN, j)
			}
			vlans[in.VLAN] = i
		}
		if in.PCISlot < 0 || in.PCISlot > 31 {
			bad(f+".pci_slot", "%d is out of range 1..31", in.PCISlot)
		}
		if in.PCIBus < 0 || in.PCIBus > 255 {
			bad(f+".pci_bus", "%d is out of range 0..255", in.PCIBus)
		}
		if in.PCISlot != 0 {
			k := [2]int{in.PCIBus, in.PCISlot}
			if j, dup := slots[k]; dup {
				bad(f+".pci_slot", "bus %d slot %d is already used by interfaces[%d]", in.PCIBus, in.PCISlot, j)
			}
			slots[k] = i
		} else if in.PCIBus != 0 {
			bad(f+".pci_bus", "set pci_slot too when choosing a bus")
		}
		if in.Model != "" && !reModel.MatchString(in.Model) {
			bad(f+".model", "%q is not a NIC model (virtio, e1000, ...)", in.Model)
		}
	}
	return errors.Join(errs...)
}
