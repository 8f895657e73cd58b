package lab

import (
	"errors"
	"fmt"
	"log/slog"
)

// Pair is the standard topology: a client and a server separated by two
// appliances, nva-a and nva-b, on segments front and back, with a direct
// heartbeat/sync link hb between the appliances.
//
//	client ─ front ─┬─ nva-a ─┬─ back ─ server
//	                └─ nva-b ─┘
//	          nva-a ══ hb ══ nva-b
//
// The client reaches the back network via nva-a and the server's default
// route goes via nva-a; tests re-point them (ReplaceRoute) to follow the
// active appliance. Both appliances forward IPv4.
type Pair struct {
	*Lab
	Client, A, B, Server *Host
}

// NewPair builds the pair topology in a new lab. On failure it tears down
// whatever it built and returns the error.
func NewPair(prefix string, log *slog.Logger) (*Pair, error) {
	l, err := New(prefix, log)
	if err != nil {
		return nil, err
	}
	p, err := buildPair(l)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("building pair topology %s: %w", prefix, err), l.Close())
	}
	return p, nil
}

func buildPair(l *Lab) (*Pair, error) {
	p := &Pair{Lab: l}
	var err error
	for _, h := range []struct {
		dst  **Host
		name string
	}{{&p.Client, "client"}, {&p.A, "nva-a"}, {&p.B, "nva-b"}, {&p.Server, "server"}} {
		if *h.dst, err = l.AddHost(h.name); err != nil {
			return nil, err
		}
	}
	for _, s := range []string{"front", "back"} {
		if err := l.AddSegment(s); err != nil {
			return nil, err
		}
	}
	for _, a := range []struct {
		h          *Host
		ifn, seg   string
		addr, mask string
	}{
		{p.Client, IfFront, "front", ClientFront, "/24"},
		{p.A, IfFront, "front", AFront, "/24"},
		{p.B, IfFront, "front", BFront, "/24"},
		{p.A, IfBack, "back", ABack, "/24"},
		{p.B, IfBack, "back", BBack, "/24"},
		{p.Server, IfFront, "back", ServerBack, "/24"},
	} {
		if err := l.Attach(a.h, a.ifn, a.seg, a.addr+a.mask); err != nil {
			return nil, err
		}
	}
	if err := l.Wire(p.A, IfHB, AHB+"/30", p.B, IfHB, BHB+"/30"); err != nil {
		return nil, err
	}
	for _, h := range []*Host{p.A, p.B} {
		if err := h.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
			return nil, err
		}
	}
	if err := p.Client.AddRoute(BackNet, AFront); err != nil {
		return nil, err
	}
	if err := p.Server.AddRoute("default", ABack); err != nil {
		return nil, err
	}
	return p, nil
}

// Appliances returns nva-a and nva-b.
func (p *Pair) Appliances() [2]*Host { return [2]*Host{p.A, p.B} }

// Steer points the client's route to the back network and the server's
// default route at appliance i, as a cloud load balancer or route table
// would after a failover.
func (p *Pair) Steer(i int) error {
	if err := p.Client.ReplaceRoute(BackNet, FrontAddr(i)); err != nil {
		return err
	}
	return p.Server.ReplaceRoute("default", BackAddr(i))
}
