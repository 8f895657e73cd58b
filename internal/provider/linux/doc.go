// Package linux adapts baton to the Linux network stack: it adds and removes
// addresses over netlink, announces them with gratuitous ARP and unsolicited
// neighbour advertisements from AF_PACKET sockets, probes for address
// conflicts (RFC 5227 ARP probes, RFC 4862 duplicate address detection) and
// manages macvlan links that carry a virtual MAC.
//
// A Host is bound to one network namespace; the package-level functions act
// on the namespace of the calling process.
package linux

import "net/netip"

// Addr is an address configured on a named interface.
type Addr struct {
	Prefix    netip.Prefix
	Interface string
}

func (a Addr) String() string { return a.Prefix.String() + " dev " + a.Interface }
