package kvm

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "check", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckMatchingFixtures(t *testing.T) {
	ps, err := CheckFiles("testdata/check/fw-master.xml", "testdata/check/fw-slave.xml")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 0 {
		t.Fatalf("problems in a matching pair: %v", ps)
	}
	var b bytes.Buffer
	if err := Report(&b, ps); err != nil || !strings.HasPrefix(b.String(), "ok:") {
		t.Errorf("Report: %v %q", err, b.String())
	}
}

func TestCheckMismatchedFixtures(t *testing.T) {
	ps, err := Check(fixture(t, "fw-master.xml"), fixture(t, "fw-slave-mismatched.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"interface #1: fw-slave on bridge br1-internal has no <virtualport type='openvswitch'/>",
		"interface #2: PCI addresses differ: fw-master at 0000:00:04.0, fw-slave at 0000:00:08.0 (bus, slot and function must match)",
		"interface #3: on different bridges: fw-master on br3-internal, fw-slave on br2-external",
		"interface #3: VLAN tags differ: fw-master tag 103, fw-slave untagged",
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var b bytes.Buffer
	err = Report(&b, ps)
	if err == nil || !strings.Contains(err.Error(), "4 problem") {
		t.Errorf("Report error %v", err)
	}
	if strings.Count(b.String(), "\n") != 4 {
		t.Errorf("Report output:\n%s", b.String())
	}
}

func TestCheckOtherProblems(t *testing.T) {
	dom := func(name string, ifaces ...string) []byte {
		return []byte("<domain type='kvm'><name>" + name + "</name><devices>" + strings.Join(ifaces, "") + "</devices></domain>")
	}
	ovs := func(mac, br, slot, extra string) string {
		return "<interface type='bridge'><mac address='" + mac + "'/><source bridge='" + br + "'/><virtualport type='openvswitch'/>" + extra +
			"<address type='pci' domain='0x0000' bus='0x00' slot='" + slot + "' function='0x0'/></interface>"
	}
	network := "<interface type='network'><mac address='52:54:00:00:00:09'/><source network='default'/><address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></interface>"
	cases := []struct {
		a, b []byte
		want []string
	}{
		{dom("a", ovs("52:54:00:00:00:01", "br1", "0x03", ""), ovs("52:54:00:00:00:02", "br2", "0x04", "")),
			dom("b", ovs("52:54:00:00:00:03", "br1", "0x03", "")),
			[]string{"a has 2 interfaces, b has 1"}},
		{dom("a", ovs("52:54:00:00:00:01", "br1", "0x03", ""), ovs("52:54:00:00:00:02", "br2", "0x04", "")),
			dom("b", ovs("52:54:00:00:00:03", "br1", "0x03", ""), network),
			[]string{"interface #2: b is type='network' (source \"default\"), not attached to an Open vSwitch bridge"}},
		{dom("a", ovs("52:54:00:00:00:01", "br1", "0x3", "")),
			dom("b", ovs("52:54:00:00:00:01", "br1", "0x03", "")),
			[]string{"interface #1: both VMs use MAC 52:54:00:00:00:01"}},
		{dom("a", ovs("52:54:00:00:00:01", "br1", "0x03", "<vlan trunk='yes'><tag id='5'/><tag id='6'/></vlan>")),
			dom("b", ovs("52:54:00:00:00:02", "br1", "0x03", "<vlan><tag id='6'/><tag id='5'/></vlan>")),
			nil},
		{dom("a", ovs("52:54:00:00:00:01", "br1", "0x03", "<vlan><tag id='5'/></vlan>")),
			dom("b", ovs("52:54:00:00:00:02", "br1", "0x03", "<vlan><tag id='6'/></vlan>")),
			[]string{"interface #1: VLAN tags differ: a tag 5, b tag 6"}},
		{dom("a", ovs("52:54:00:00:00:01", "br1", "0x03", ""), ovs("52:54:00:00:00:02", "br1", "0x04", "")),
			dom("b", ovs("52:54:00:00:00:03", "br1", "0x03", ""), ovs("52:54:00:00:00:04", "br1", "0x04", "")),
			[]string{"interface #2: shares bridge br1 with interface #1"}},
		{dom("a", "<interface type='bridge'><source bridge='br1'/><virtualport type='openvswitch'/></interface>"),
			dom("a", ovs("52:54:00:00:00:04", "br1", "0x04", "")),
			[]string{"interface #1: a (first) has no PCI <address>"}},
		{dom("a"), dom("b"), []string{"neither a nor b has an interface"}},
	}
	for i, c := range cases {
		ps, err := Check(c.a, c.b)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if len(got) != len(c.want) {
			t.Errorf("case %d: got %q, want %q", i, got, c.want)
			continue
		}
		for j := range got {
			if !strings.HasPrefix(got[j], c.want[j]) {
				t.Errorf("case %d: got %q, want prefix %q", i, got[j], c.want[j])
			}
		}
	}
}

func TestCheckUnreadable(t *testing.T) {
	good := fixture(t, "fw-master.xml")
	cases := []struct {
		a, b []byte
		want string
	}{
		{fixture(t, "truncated.xml"), good, "first domain: reading domain XML: XML syntax error"},
		{good, fixture(t, "fw-slave-badslot.xml"), "second domain (fw-slave): <interface> #2: <address type='pci'> slot='0xZZ' is not a number"},
		{good, []byte("<network><name>x</name></network>"), "second domain: reading domain XML: expected element type <domain>"},
		{good, []byte("<domain><devices/></domain>"), "second domain: <domain> has no <name>"},
		{good, []byte("<domain><name>x</name><devices><interface type='bridge'><vlan><tag id='abc'/></vlan></interface></devices></domain>"), "<vlan><tag id='abc'/> is not a VLAN ID"},
		{good, []byte(""), "second domain: reading domain XML: EOF"},
	}
	for _, c := range cases {
		_, err := Check(c.a, c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to contain %q", err, c.want)
		}
	}
	if _, err := CheckFiles("testdata/check/fw-master.xml", "testdata/check/missing.xml"); err == nil || !strings.Contains(err.Error(), "missing.xml") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := CheckFiles("testdata/check/truncated.xml", "testdata/check/fw-slave.xml"); err == nil || !strings.Contains(err.Error(), "testdata/check/truncated.xml") {
		t.Errorf("file name not in error: %v", err)
	}
}

func FuzzCheck(f *testing.F) {
	for _, n := range []string{"fw-master.xml", "fw-slave.xml", "fw-slave-mismatched.xml", "fw-slave-badslot.xml", "truncated.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "check", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ref, err := os.ReadFile("testdata/check/fw-master.xml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := Check(ref, b)
		if err != nil {
			if ps != nil {
				t.Fatal("problems returned with an error")
			}
			return
		}
		for _, p := range ps {
			if p.Message == "" {
				t.Fatal("empty problem")
			}
		}
	})
}
