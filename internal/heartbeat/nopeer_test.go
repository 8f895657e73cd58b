package heartbeat

import (
	"net"
	"testing"

	"github.com/batonha/baton/internal/clock"
)

// A node with no peer (a scale-set instance announcing over BGP) has a
// monitor without paths; a named peer still needs one.
func TestNoPeerNeedsNoPath(t *testing.T) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	clk := clock.NewFake(t0)
	if _, err := New(baseConfig(t, "vmss-1", "", clk, udp)); err != nil {
		t.Errorf("no peer, no paths: %v", err)
	}
	if _, err := New(baseConfig(t, "nva-a", "nva-b", clk, udp)); err == nil {
		t.Error("a named peer with no path was accepted")
	}
}
