package cloud

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/batonha/baton/internal/lab"
)

// Kernel tables of the fabric for the two subnets' route tables.
const (
	ktClient = 101
	ktServer = 102
)

// Topology is the lab of a cloud failover: a client and a server in two
// subnets whose route tables send traffic between them through one of the
// appliances, a fabric router that forwards by those route tables, and the
// emulated control plane on a management segment with the appliances.
type Topology struct {
	*lab.Lab
	Client, Fabric, A, B, Server, Cloud *lab.Host
	// Router forwards by the emulated route tables once Connect ran.
	Router *Fabric

	log *slog.Logger
}

// NewTopology builds the cloud topology in a new lab. On failure it tears
// down whatever it built.
func NewTopology(prefix string, log *slog.Logger) (*Topology, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l, err := lab.New(prefix, log)
	if err != nil {
		return nil, err
	}
	t := &Topology{Lab: l, log: log}
	if err := t.build(); err != nil {
		return nil, errors.Join(fmt.Errorf("building cloud topology %s: %w", prefix, err), l.Close())
	}
	return t, nil
}

func (t *Topology) build() error {
	l := t.Lab
	var err error
	for _, h := range []struct {
		dst  **lab.Host
		name string
	}{{&t.Client, "client"}, {&t.Fabric, "fabric"}, {&t.A, "nva-a"}, {&t.B, "nva-b"}, {&t.Server, "server"}, {&t.Cloud, "cloud"}} {
		if *h.dst, err = l.AddHost(h.name); err != nil {
			return err
		}
	}
	// Forwarders: no reverse-path filter (a VPC router sees the client's
	// packets come back from an appliance), no redirects (the appliances
	// send traffic back out the interface it came in on, by design).
	for _, h := range []*lab.Host{t.Fabric, t.A, t.B} {
		for _, kv := range [][2]string{
			{"net.ipv4.ip_forward", "1"},
			{"net.ipv4.conf.all.rp_filter", "0"}, {"net.ipv4.conf.default.rp_filter", "0"},
			{"net.ipv4.conf.all.send_redirects", "0"}, {"net.ipv4.conf.default.send_redirects", "0"},
		} {
			if err := h.Sysctl(kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	for _, s := range []string{"edge", "front", "srv", "mgmt"} {
		if err := l.AddSegment(s); err != nil {
			return err
		}
	}
	for _, a := range []struct {
		h        *lab.Host
		ifn, seg string
		cidr     string
	}{
		{t.Client, "eth0", "edge", ClientAddr + "/24"},
		{t.Fabric, "edge", "edge", FabricEdge + "/24"},
		{t.Fabric, "front", "front", FabricFront + "/24"},
		{t.Fabric, "srv", "srv", FabricServer + "/24"},
		{t.Server, "eth0", "srv", ServerAddr + "/24"},
		{t.A, lab.IfFront, "front", lab.AFront + "/24"},
		{t.B, lab.IfFront, "front", lab.BFront + "/24"},
		{t.A, IfMgmt, "mgmt", AMgmt + "/24"},
		{t.B, IfMgmt, "mgmt", BMgmt + "/24"},
		{t.Cloud, "eth0", "mgmt", CloudAddr + "/24"},
	} {
		if err := l.Attach(a.h, a.ifn, a.seg, a.cidr); err != nil {
			return err
		}
	}
	if err := l.Wire(t.A, lab.IfHB, lab.AHB+"/30", t.B, lab.IfHB, lab.BHB+"/30"); err != nil {
		return err
	}
	for _, r := range []struct {
		h   *lab.Host
		via string
	}{{t.Client, FabricEdge}, {t.Server, FabricServer}, {t.A, FabricFront}, {t.B, FabricFront}} {
		if err := r.h.AddRoute("default", r.via); err != nil {
			return err
		}
	}
	return nil
}

// Pair returns the topology seen as the standard pair (client, nva-a,
// nva-b, server), for lab.SetupBatonNodes and lab.PairNodeConfig.
func (t *Topology) Pair() *lab.Pair {
	return &lab.Pair{Lab: t.Lab, Client: t.Client, A: t.A, B: t.B, Server: t.Server}
}

// Appliances returns nva-a and nva-b.
func (t *Topology) Appliances() [2]*lab.Host { return [2]*lab.Host{t.A, t.B} }

// Endpoint is the URL the appliances reach the control plane at.
func Endpoint() string { return "http://" + net.JoinHostPort(CloudAddr, strconv.Itoa(CloudPort)) }

// Connect makes the fabric forward by s's route tables for the scenario
// of cloud ("aws" after SeedAWS, "azure" after SeedAzure): the client and
// server subnets' tables are associated with the fabric's edge and srv
// interfaces, the kernel routes are set from s's current state and follow
// every later change, and s answers on Endpoint() inside the cloud
// namespace until the lab closes (or s.Close).
func (t *Topology) Connect(s *Server, cloud string) error {
	f := NewFabric(t.Fabric, t.log)
	var client, server string
	var initial []RouteChange
	switch cloud {
	case "aws":
		client, server = RTBClient, RTBServer
		for _, i := range []int{0, 1} {
			if err := f.Hop(ENI(i), lab.FrontAddr(i)); err != nil {
				return err
			}
		}
		for _, r := range [][2]string{{RTBClient, ServerNet}, {RTBClient, UnownedPrefix}, {RTBServer, ClientNet}} {
			tgt := s.EC2().Target(r[0], r[1])
			initial = append(initial, RouteChange{Cloud: "aws", Table: r[0], Destination: r[1], Target: tgt})
		}
	case "azure":
		client, server = AzureClientTable, AzureServerTable
		for _, i := range []int{0, 1} {
			if err := f.Hop(lab.FrontAddr(i), lab.FrontAddr(i)); err != nil {
				return err
			}
		}
		for _, tb := range []string{AzureClientTable, AzureServerTable} {
			for _, r := range s.AzureRoutes(tb) {
				tgt := ""
				if r.NextHopType == "VirtualAppliance" {
					tgt = r.NextHopIP
				}
				initial = append(initial, RouteChange{Cloud: "azure", Table: tb, Destination: r.Prefix, Target: tgt})
			}
		}
	default:
		return fmt.Errorf("connecting the fabric: cloud %q is not aws or azure", cloud)
	}
	if err := f.Associate(client, "edge", ktClient); err != nil {
		return err
	}
	if err := f.Associate(server, "srv", ktServer); err != nil {
		return err
	}
	for _, c := range initial {
		if err := f.Apply(c); err != nil {
			return err
		}
	}
	s.OnRouteChange(f.Follow)
	t.Router = f
	ln, err := t.Cloud.Listen("tcp", net.JoinHostPort(CloudAddr, strconv.Itoa(CloudPort)))
	if err != nil {
		return err
	}
	go func() {
		if err := s.Serve(ln); err != nil {
			t.log.Debug("emulated cloud stopped", "component", "cloud", "reason", err.Error())
		}
	}()
	return nil
}

// SetAppliance sets appliance i's data interface (front) down, as when
// the VM dies, or up again with its default route via the fabric restored
// (the kernel drops routes through an interface that goes down).
func (t *Topology) SetAppliance(i int, up bool) error {
	h := t.Appliances()[i]
	if err := h.SetLink(lab.IfFront, up); err != nil {
		return err
	}
	if !up {
		return nil
	}
	return h.ReplaceRoute("default", FabricFront)
}
