package daemon

import (
	"context"
	"log/slog"
	"net"
	"slices"

	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/linkwatch"
)

// trackedLinks are the interfaces of which any being down holds the node
// in FAULT: the VIP interfaces and node.track_interfaces.
func trackedLinks(cfg *config.Config) []string {
	var out []string
	if cfg.VIP != nil {
		for _, a := range cfg.VIP.Addresses {
			out = append(out, a.Interface)
		}
	}
	out = append(out, cfg.Node.TrackInterfaces...)
	slices.Sort(out)
	return slices.Compact(out)
}

// pathLinks are the interfaces the heartbeat paths (and the peer channel)
// leave by, as the kernel routes them now: with every one of them down
// this node is the one cut off. A path whose interface cannot be found is
// not tracked (logged).
func pathLinks(cfg *config.Config, log *slog.Logger) []string {
	var out []string
	add := func(what, source, address string) {
		var name string
		var err error
		if ip := net.ParseIP(source); ip != nil {
			name, err = linkwatch.AddressInterface(ip)
		} else {
			var a *net.UDPAddr
			if a, err = net.ResolveUDPAddr("udp", address); err == nil {
				name, err = linkwatch.RouteInterface(a.IP)
			}
		}
		if err != nil {
			log.Warn("not tracking the interface of a heartbeat path", "path", what, "err", err)
			return
		}
		out = append(out, name)
	}
	for _, p := range cfg.Peer.Paths {
		add(p.Name, p.Source, p.Address)
	}
	if cfg.Peer.Channel.Enabled {
		add("channel", "", cfg.Peer.Channel.Address)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// watchLinks feeds the state of every tracked interface to the loop.
func (d *Daemon) watchLinks(ctx context.Context) {
	names := append(trackedLinks(d.cfg), d.pathLinks...)
	if len(names) == 0 {
		return
	}
	if err := linkwatch.Watch(ctx, d.links, names, d.linkCh); err != nil && ctx.Err() == nil {
		d.log.Error("interface tracking stopped", "err", err)
	}
}
