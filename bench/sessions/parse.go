// Command sessions benchmarks baton's session sync against conntrackd
// (FTFW over unicast UDP) in the same network-namespace topology:
// replication rate, commit time on takeover and connection survival.
// See README.md.
package main

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"

	"github.com/batonha/baton/internal/provider/conntrack"
)

var extActive = regexp.MustCompile(`cache:external\s+active objects:\s+(\d+)`)

// externalCount reads the external cache's size from `conntrackd -s cache`.
func externalCount(out []byte) (int, error) {
	m := extActive.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no external cache count in conntrackd output: %.200s", out)
	}
	return strconv.Atoi(string(m[1]))
}

// synthetic returns n established TCP connections from the client
// network, source-NATed to snat, each with a distinct original and reply
// tuple, numbered from base.
func synthetic(n, base int, snat netip.Addr) []conntrack.Op {
	ops := make([]conntrack.Op, n)
	client := netip.MustParseAddr("10.100.1.10")
	for k := range n {
		i := base + k
		port := uint16(1024 + i%60000)
		dst := netip.AddrFrom4([4]byte{10, 100, 2, byte(100 + i/60000)})
		ops[k] = conntrack.Op{Kind: conntrack.OpCreate, Entry: conntrack.Entry{
			Proto:    conntrack.ProtoTCP,
			Orig:     conntrack.Tuple{Src: client, Dst: dst, SrcPort: port, DstPort: 80},
			Reply:    conntrack.Tuple{Src: dst, Dst: snat, SrcPort: 80, DstPort: port},
			Status:   conntrack.StatusConfirmed | conntrack.StatusSeenReply | conntrack.StatusAssured,
			Timeout:  3600,
			TCPState: conntrack.TCPEstablished,
		}}
	}
	return ops
}
