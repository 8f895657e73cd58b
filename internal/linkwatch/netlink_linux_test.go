package linkwatch

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/batonha/baton/internal/lab/labtest"
)

// The kernel's view, in a network namespace of the test's own: a veth
// whose peer goes down loses its carrier, and comes back with it.
func TestNetlinkReportsCarrier(t *testing.T) {
	labtest.RequireRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // this thread is now in ns
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = netns.Set(orig)
		ns.Close()
	}()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "bt-w0"}, PeerName: "bt-w1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	peer, err := netlink.LinkByName("bt-w1")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []netlink.Link{veth, peer} {
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Update, 16)
	errc := make(chan error, 1)
	// The subscription socket is opened on this thread, in ns.
	go func() { errc <- Watch(ctx, Netlink{NS: &ns}, []string{"bt-w0"}, out) }()
	want := func(up bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case u := <-out:
				if u.Up == up {
					return
				}
			case err := <-errc:
				t.Fatalf("Watch: %v", err)
			case <-deadline:
				t.Fatalf("no update up=%v for bt-w0", up)
			}
		}
	}
	want(true)
	if err := netlink.LinkSetDown(peer); err != nil {
		t.Fatal(err)
	}
	want(false)
	if err := netlink.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	want(true)
}
