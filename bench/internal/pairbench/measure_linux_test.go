package pairbench

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ifaddrmsg builds an RTM_NEWADDR payload carrying the given attributes.
func ifaddrmsg(attrs map[int]net.IP) []byte {
	b := nl.NewIfAddrmsg(unix.AF_INET).Serialize()
	for typ, ip := range attrs {
		b = append(b, nl.NewRtAttr(typ, ip.To4()).Serialize()...)
	}
	return b
}

func TestAddrMsgHas(t *testing.T) {
	vip, other := net.ParseIP(VIPAddr).To4(), net.ParseIP("10.100.1.11").To4()
	for _, c := range []struct {
		name string
		data []byte
		want bool
	}{
		{"local", ifaddrmsg(map[int]net.IP{unix.IFA_LOCAL: vip}), true},
		{"address", ifaddrmsg(map[int]net.IP{unix.IFA_ADDRESS: vip}), true},
		{"other address", ifaddrmsg(map[int]net.IP{unix.IFA_LOCAL: other, unix.IFA_ADDRESS: other}), false},
		{"label only", ifaddrmsg(map[int]net.IP{unix.IFA_LABEL: vip}), false},
		{"short", []byte{2, 24}, false},
		{"bad attribute", append(nl.NewIfAddrmsg(unix.AF_INET).Serialize(), 0xff, 0xff, 1, 0), false},
	} {
		if got := addrMsgHas(c.data, vip); got != c.want {
			t.Errorf("%s: addrMsgHas = %t, want %t", c.name, got, c.want)
		}
	}
}

func FuzzAddrMsgHas(f *testing.F) {
	f.Add(ifaddrmsg(map[int]net.IP{unix.IFA_LOCAL: net.ParseIP(VIPAddr)}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if addrMsgHas(data, net.ParseIP(VIPAddr).To4()) && len(data) < unix.SizeofIfAddrmsg+8 {
			t.Errorf("found a 4-byte address in %d bytes", len(data))
		}
	})
}

// TestWatchAddr adds an address in a fresh namespace while WatchAddr
// watches it, and stops a second watch that sees nothing.
func TestWatchAddr(t *testing.T) {
	labtest.RequireRoot(t)
	l, err := lab.New(lab.RandomPrefix(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing lab: %v", err)
		}
	})
	h, err := l.AddHost("w")
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP("10.200.0.1")

	stop := make(chan struct{})
	defer close(stop)
	ready, res := WatchAddr(h.NsHandle(), ip, stop)
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	lo, err := h.Handle().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	addr, _ := netlink.ParseAddr("10.200.0.1/32")
	if err := h.Handle().AddrAdd(lo, addr); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-res:
		if o.Err != nil || o.At.Before(added) || o.At.Sub(added) > 5*time.Second {
			t.Errorf("observation %+v, address added at %v", o, added)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no RTM_NEWADDR seen within 5s")
	}

	stop2 := make(chan struct{})
	ready, res = WatchAddr(h.NsHandle(), net.ParseIP("10.200.0.2"), stop2)
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	close(stop2)
	select {
	case o := <-res:
		if o.Err == nil || !strings.Contains(o.Err.Error(), "stopped") {
			t.Errorf("stopped watch: %+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stopped watch did not report within 5s")
	}
}
