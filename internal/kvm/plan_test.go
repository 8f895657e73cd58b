package kvm

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonha/baton/internal/lab/labtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func loadPlan(t *testing.T, name string) *PlanOutput {
	t.Helper()
	p, err := LoadPair(filepath.Join("testdata", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPlanGolden(t *testing.T) {
	for _, name := range []string{"single", "two"} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := loadPlan(t, name).Render(&b); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("plan differs from %s (run with -update after checking):\n%s", golden, b.String())
			}
		})
	}
}

func TestPlanPairsMatch(t *testing.T) {
	out := loadPlan(t, "two")
	p := out.Pair
	a, b := out.Domains[p.VMs[0]], out.Domains[p.VMs[1]]
	if len(a) != 3 || len(b) != 3 {
		t.Fatalf("interfaces: %d and %d", len(a), len(b))
	}
	slots := map[int]bool{}
	for i := range a {
		if a[i].PCI != b[i].PCI || a[i].Bridge != b[i].Bridge || a[i].VLAN != b[i].VLAN {
			t.Errorf("pair %d differs: %+v / %+v", i, a[i], b[i])
		}
		if a[i].MAC.String() == b[i].MAC.String() {
			t.Errorf("pair %d: same MAC", i)
		}
		if a[i].MAC[0] != 0x52 || a[i].MAC[0]&2 == 0 || a[i].MAC[1] != 0x54 || a[i].MAC[2] != 0 {
			t.Errorf("MAC %s is not 52:54:00:xx, locally administered", a[i].MAC)
		}
		if slots[a[i].PCI.Slot] {
			t.Errorf("slot %d used twice", a[i].PCI.Slot)
		}
		slots[a[i].PCI.Slot] = true
	}
	// Explicit slot 8 is kept; the others fill 3 and 4.
	if a[0].PCI.Slot != 3 || a[1].PCI.Slot != 8 || a[2].PCI.Slot != 4 {
		t.Errorf("slots %d %d %d, want 3 8 4", a[0].PCI.Slot, a[1].PCI.Slot, a[2].PCI.Slot)
	}
	if got := []string{a[0].Bridge, a[1].Bridge, a[2].Bridge}; strings.Join(got, " ") != "br1-internal br2-external br3-ha" {
		t.Errorf("bridges %v", got)
	}
	// Stable: the same input gives the same MACs.
	if again := loadPlan(t, "two"); again.Domains[p.VMs[0]][0].MAC.String() != a[0].MAC.String() {
		t.Error("MAC not stable across runs")
	}
	if StableMAC("fw-a", "if1").String() == StableMAC("fw-b", "if1").String() {
		t.Error("MAC does not depend on the VM")
	}
}

// TestPlanChecksClean: the generated interfaces, put into two domains,
// pass Check, and validate against libvirt's schema.
func TestPlanChecksClean(t *testing.T) {
	for _, name := range []string{"single", "two"} {
		out := loadPlan(t, name)
		var docs [2][]byte
		for i, vm := range out.Pair.VMs {
			docs[i] = wrapDomain(vm, out.Domains[vm])
		}
		ps, err := Check(docs[0], docs[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 0 {
			t.Errorf("%s: generated plan has problems: %v", name, ps)
		}
	}
}

func wrapDomain(vm string, xs []InterfaceXML) []byte {
	var b bytes.Buffer
	b.WriteString("<domain type='kvm'>\n  <name>" + vm + "</name>\n  <memory unit='KiB'>1048576</memory>\n")
	b.WriteString("  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n  <devices>\n")
	for _, x := range xs {
		b.WriteString(x.XML)
	}
	b.WriteString("  </devices>\n</domain>\n")
	return b.Bytes()
}

func TestPlanXMLValidates(t *testing.T) {
	labtest.RequireTool(t, "virt-xml-validate")
	labtest.RequireTool(t, "xmllint")
	dir := t.TempDir()
	for _, name := range []string{"single", "two"} {
		out := loadPlan(t, name)
		for _, vm := range out.Pair.VMs {
			for _, x := range out.Domains[vm] {
				f := filepath.Join(dir, name+"-"+x.File)
				if err := os.WriteFile(f, wrapDomain(vm, []InterfaceXML{x}), 0o644); err != nil {
					t.Fatal(err)
				}
				if o, err := exec.Command("virt-xml-validate", f, "domain").CombinedOutput(); err != nil {
					t.Errorf("%s %s does not validate: %v\n%s\n%s", name, x.File, err, o, x.XML)
				}
			}
		}
	}
	// The validator does reject a broken interface, so the check means something.
	bad := filepath.Join(dir, "bad.xml")
	os.WriteFile(bad, wrapDomain("x", []InterfaceXML{{XML: "<interface type='bridge'><virtualport type='nonsense'/></interface>\n"}}), 0o644)
	if err := exec.Command("virt-xml-validate", bad, "domain").Run(); err == nil {
		t.Error("virt-xml-validate accepted an invalid interface")
	}
}

func TestPairErrorsNameFields(t *testing.T) {
	cases := map[string]string{
		"vms: [a, a]\nservers: 1\ninterfaces: [{name: if1, role: internal}]":                                          "pair.vms: the two VMs must differ",
		"vms: [a]\nservers: 1\ninterfaces: [{name: if1, role: internal}]":                                             "pair.vms: exactly two libvirt domain names are required (vms: [fw-a, fw-b]), got 1",
		"vms: [a, b]\nservers: 3\ninterfaces: [{name: if1, role: internal}]":                                          "pair.servers: 3",
		"vms: [a, b]\nservers: 2\ninterfaces: [{name: if1, role: internal, vlan: 5}]":                                 "pair.uplink: required when servers is 2",
		"vms: [a, b]\nservers: 1\nuplink: eth1\ninterfaces: [{name: if1, role: internal}]":                            "pair.uplink: only used when servers is 2",
		"vms: [a, b]\nservers: 2\nuplink: eth1\ninterfaces: [{name: if1, role: internal}]":                            "pair.interfaces[0].vlan: required when servers is 2",
		"vms: [a, b]\nservers: 1\ninterfaces: [{name: if1, role: a, vlan: 7}, {name: if2, role: b, vlan: 7}]":         "pair.interfaces[1].vlan: 7 is already used by interfaces[0]",
		"vms: [a, b]\nservers: 1\ninterfaces: [{name: if1, role: a}, {name: if1, role: b}]":                           `pair.interfaces[1].name: "if1" is already interfaces[0]`,
		"vms: [a, b]\nservers: 1\ninterfaces: [{name: if1, role: Internal}]":                                          `pair.interfaces[0].role: "Internal"`,
		"vms: [a, b]\nservers: 1\ninterfaces: [{name: if1, role: verylongrolename}]":                                  "pair.interfaces[0].role: bridge name",
		"vms: [a, b]\nservers: 1\ninterfaces: [{name: if1, role: a, pci_slot: 40}]":                                   "pair.interfaces[0].pci_slot: 40 is out of range",
		"vms: [a, b]\nservers: 1\ninterfaces: [{name: if1, role: a, pci_slot: 5}, {name: if2, role: b, pci_slot: 5}]": "pair.interfaces[1].pci_slot: bus 0 slot 5 is already used",
		"vms: [a, b]\nservers: 1\ninterfaces: []":                                                                     "pair.interfaces: at least one",
		"vms: [a, b]\nservers: 1\ninterfaces: [{name: if1, role: a, colour: red}]":                                    "field colour not found",
		"vms: [a, '']\nservers: 1\ninterfaces: [{name: if1, role: a}]":                                                "pair.vms[1]: required",
		"vms: [a, 'b c']\nservers: 1\ninterfaces: [{name: if1, role: a}]":                                             `pair.vms[1]: "b c" is not a usable domain name`,
	}
	for in, want := range cases {
		_, err := ParsePair([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("input:\n%s\nerror %v\nwant it to contain %q", in, err, want)
		}
	}
	if _, err := LoadPair("testdata/nonexistent.yaml"); err == nil || !strings.Contains(err.Error(), "nonexistent.yaml") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Plan(&Pair{}); err == nil {
		t.Error("Plan accepted an empty pair")
	}
}
