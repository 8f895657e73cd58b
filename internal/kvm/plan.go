package kvm

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// PCIAddress is a guest PCI address.
type PCIAddress struct {
	Domain, Bus, Slot, Function int
}

func (a PCIAddress) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", a.Domain, a.Bus, a.Slot, a.Function)
}

// InterfaceXML is one VM interface of the plan.
type InterfaceXML struct {
	VM        string
	Interface string // the pair's name (if1)
	Role      string
	Bridge    string
	MAC       net.HardwareAddr
	VLAN      int // 0: untagged
	PCI       PCIAddress
	Model     string
	File      string // suggested file name: VM-IFACE.xml
	XML       string // the <interface> element
}

// PlanOutput is everything `baton kvm plan` prints.
type PlanOutput struct {
	Pair        *Pair
	Bridges     []string
	OVSCommands []string // shell commands, identical on every server
	// Domains maps each VM to its interfaces, in pair order.
	Domains map[string][]InterfaceXML
	Virsh   []string // shell commands, per VM in VMs order
}

// StableMAC derives the MAC of vm's interface name: 52:54:00 (the KVM
// prefix, locally administered) and three bytes of SHA-256(vm, name).
func StableMAC(vm, name string) net.HardwareAddr {
	h := sha256.Sum256([]byte(vm + "\x00" + name))
	return net.HardwareAddr{0x52, 0x54, 0x00, h[0], h[1], h[2]}
}

// Plan turns a validated pair into commands and interface definitions.
func Plan(p *Pair) (*PlanOutput, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	out := &PlanOutput{Pair: p, Domains: map[string][]InterfaceXML{}}
	pci := assignPCI(p)

	vsctl := func(args ...string) {
		out.OVSCommands = append(out.OVSCommands, "ovs-vsctl "+strings.Join(args, " "))
	}
	addBridge := func(br string) {
		args := []string{"--may-exist", "add-br", br}
		if p.DatapathType != "" {
			args = append(args, "--", "set", "bridge", br, "datapath_type="+p.DatapathType)
		}
		vsctl(args...)
	}
	for i := range p.Interfaces {
		br := p.BridgeName(i)
		out.Bridges = append(out.Bridges, br)
		addBridge(br)
	}
	if p.Servers == 2 {
		out.Bridges = append(out.Bridges, UplinkBridge)
		addBridge(UplinkBridge)
		var all []string
		for _, in := range p.Interfaces {
			all = append(all, strconv.Itoa(in.VLAN))
		}
		vsctl("--may-exist", "add-port", UplinkBridge, p.Uplink, "--", "set", "port", p.Uplink, "trunks="+strings.Join(all, ","))
		for i, in := range p.Interfaces {
			br := p.BridgeName(i)
			down, up := fmt.Sprintf("br%d-to-up", i+1), fmt.Sprintf("up-to-br%d", i+1)
			v := strconv.Itoa(in.VLAN)
			vsctl("--may-exist", "add-port", br, down, "--", "set", "interface", down, "type=patch", "options:peer="+up, "--", "set", "port", down, "trunks="+v)
			vsctl("--may-exist", "add-port", UplinkBridge, up, "--", "set", "interface", up, "type=patch", "options:peer="+down, "--", "set", "port", up, "trunks="+v)
		}
	}

	macs := map[string]string{}
	for _, vm := range p.VMs {
		for i, in := range p.Interfaces {
			x := InterfaceXML{
				VM: vm, Interface: in.Name, Role: in.Role, Bridge: p.BridgeName(i),
				MAC: StableMAC(vm, in.Name), VLAN: in.VLAN, PCI: pci[i], Model: in.Model,
				File: vm + "-" + in.Name + ".xml",
			}
			if x.Model == "" {
				x.Model = "virtio"
			}
			if other, dup := macs[x.MAC.String()]; dup {
				return nil, fmt.Errorf("derived MAC %s of %s %s collides with %s; rename an interface", x.MAC, vm, in.Name, other)
			}
			macs[x.MAC.String()] = vm + " " + in.Name
			x.XML = interfaceElement(x)
			out.Domains[vm] = append(out.Domains[vm], x)
			out.Virsh = append(out.Virsh, fmt.Sprintf("virsh attach-device %s %s --config", vm, x.File))
		}
	}
	return out, nil
}

// assignPCI gives each interface its configured address, or the next free
// slot on bus 0 from slot 3 (slots 1 and 2 hold the ISA bridge and video).
func assignPCI(p *Pair) []PCIAddress {
	used := map[[2]int]bool{}
	for _, in := range p.Interfaces {
		if in.PCISlot != 0 {
			used[[2]int{in.PCIBus, in.PCISlot}] = true
		}
	}
	out := make([]PCIAddress, len(p.Interfaces))
	next := 3
	for i, in := range p.Interfaces {
		if in.PCISlot != 0 {
			out[i] = PCIAddress{Bus: in.PCIBus, Slot: in.PCISlot}
			continue
		}
		for used[[2]int{0, next}] {
			next++
		}
		used[[2]int{0, next}] = true
		out[i] = PCIAddress{Slot: next}
	}
	return out
}

func interfaceElement(x InterfaceXML) string {
	var b strings.Builder
	b.WriteString("<interface type='bridge'>\n")
	fmt.Fprintf(&b, "  <mac address='%s'/>\n", x.MAC)
	fmt.Fprintf(&b, "  <source bridge='%s'/>\n", x.Bridge)
	if x.VLAN != 0 {
		fmt.Fprintf(&b, "  <vlan>\n    <tag id='%d'/>\n  </vlan>\n", x.VLAN)
	}
	b.WriteString("  <virtualport type='openvswitch'/>\n")
	fmt.Fprintf(&b, "  <model type='%s'/>\n", x.Model)
	fmt.Fprintf(&b, "  <address type='pci' domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'/>\n",
		x.PCI.Domain, x.PCI.Bus, x.PCI.Slot, x.PCI.Function)
	b.WriteString("</interface>\n")
	return b.String()
}

// Render writes the plan as a shell script: the OVS commands, the interface
// definitions as here-documents, and the virsh commands.
func (o *PlanOutput) Render(w io.Writer) error {
	p := o.Pair
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# baton kvm plan: %s and %s on %d server(s), %d interface pair(s)\nset -e\n\n", p.VMs[0], p.VMs[1], p.Servers, len(p.Interfaces))
	if p.Servers == 2 {
		fmt.Fprintf(&b, "# 1. Open vSwitch, on each server: one bridge per interface pair, joined\n#    to the other server through %s on %s, one VLAN per pair.\n", p.Uplink, UplinkBridge)
	} else {
		b.WriteString("# 1. Open vSwitch: one bridge per interface pair.\n")
	}
	for _, c := range o.OVSCommands {
		b.WriteString(c + "\n")
	}
	b.WriteString("\n# 2. Interface definitions: the same bridge and PCI address for both VMs of\n#    each pair, a stable MAC per VM interface.\n")
	for _, vm := range p.VMs {
		for _, x := range o.Domains[vm] {
			fmt.Fprintf(&b, "cat > %s <<'EOF'\n%sEOF\n", x.File, x.XML)
		}
	}
	b.WriteString("\n# 3. Attach to the VMs' persistent definitions (effective at next boot).\n#    Detach any NIC already at the same PCI address first.\n")
	for i, vm := range p.VMs {
		if p.Servers == 2 {
			fmt.Fprintf(&b, "# on server %d (%s):\n", i+1, vm)
		}
		for _, c := range o.Virsh {
			if strings.HasPrefix(c, "virsh attach-device "+vm+" ") {
				b.WriteString(c + "\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
