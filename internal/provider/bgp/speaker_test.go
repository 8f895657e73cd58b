package bgp

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// routeServer is a real GoBGP speaker standing in for a route server on
// 127.0.0.2, passive towards the speaker under test on 127.0.0.1.
type routeServer struct {
	srv  *server.BgpServer
	port int
}

func freePort(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("listening on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newRouteServer(t *testing.T) *routeServer {
	t.Helper()
	port := freePort(t, "127.0.0.2")
	srv := server.NewBgpServer()
	go srv.Serve()
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65515, RouterId: "127.0.0.2", ListenPort: int32(port), ListenAddresses: []string{"127.0.0.2"},
	}}); err != nil {
		t.Fatalf("starting route server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		srv.Stop()
	})
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001},
		Transport: &api.Transport{PassiveMode: true},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 3, KeepaliveInterval: 1, IdleHoldTimeAfterReset: 1}},
	}}); err != nil {
		t.Fatalf("adding peer on route server: %v", err)
	}
	return &routeServer{srv: srv, port: port}
}

// routes returns the prefixes the route server learned, with the length
// of each one's AS path.
func (r *routeServer) routes(t *testing.T) map[netip.Prefix]int {
	t.Helper()
	out := map[netip.Prefix]int{}
	var mu sync.Mutex
	err := r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(nlri bgp.NLRI, paths []*apiutil.Path) {
			mu.Lock()
			defer mu.Unlock()
			p, err := netip.ParsePrefix(nlri.String())
			if err != nil {
				t.Errorf("route server returned odd NLRI %q", nlri.String())
				return
			}
			for _, path := range paths {
				n := 0
				for _, a := range path.Attrs {
					if asp, ok := a.(*bgp.PathAttributeAsPath); ok {
						for _, seg := range asp.Value {
							n += len(seg.GetAS())
						}
					}
				}
				out[p] = n
			}
		})
	if err != nil {
		t.Fatalf("listing route server paths: %v", err)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestSpeakerAnnouncesPrependsAndWithdraws(t *testing.T) {
	rs := newRouteServer(t)
	sp, err := New(Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Peers: []Peer{{
		Address: netip.MustParseAddr("127.0.0.2"), ASN: 65515, Port: rs.port, Source: netip.MustParseAddr("127.0.0.1"),
		Hold: 3 * time.Second, Keepalive: time.Second, ConnectRetry: time.Second, IdleHoldAfterReset: time.Second,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Stop(context.Background()) })

	waitFor(t, "session established", func() bool { return sp.Peers(ctx)[0].Established })

	p1 := netip.MustParsePrefix("192.0.2.0/24")
	p2 := netip.MustParsePrefix("198.51.100.0/24")
	if err := sp.Set(ctx, []Route{{Prefix: p1}, {Prefix: p2}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both prefixes with AS path [65001]", func() bool {
		r := rs.routes(t)
		return len(r) == 2 && r[p1] == 1 && r[p2] == 1
	})
	// Idempotent: the same set again changes nothing.
	if err := sp.Set(ctx, []Route{{Prefix: p2}, {Prefix: p1}}); err != nil {
		t.Fatal(err)
	}

	// Prepend 2: the route server sees 65001 three times on p1.
	if err := sp.Set(ctx, []Route{{Prefix: p1, Prepend: 2}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "p1 prepended, p2 withdrawn", func() bool {
		r := rs.routes(t)
		return len(r) == 1 && r[p1] == 3
	})
	if got := sp.Announced(); len(got) != 1 || got[0].Prefix != p1 || got[0].Prepend != 2 {
		t.Fatalf("Announced() = %v", got)
	}
	waitFor(t, "advertised count 1", func() bool { return sp.Peers(ctx)[0].Advertised == 1 })

	if err := sp.Set(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "everything withdrawn", func() bool { return len(rs.routes(t)) == 0 })

	// Stop withdraws and closes the session.
	if err := sp.Set(ctx, []Route{{Prefix: p1}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "p1 again", func() bool { return len(rs.routes(t)) == 1 })
	if err := sp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "withdrawn after Stop", func() bool { return len(rs.routes(t)) == 0 })
	if err := sp.Set(ctx, []Route{{Prefix: p1}}); err == nil {
		t.Fatal("Set after Stop succeeded")
	}
}

// TestReconnectsSoonAfterDrop: GoBGP alone waits 5s in idle after a
// dropped session, then up to 2s before dialling; the speaker re-creates
// the peer after its idle hold (1s) instead.
func TestReconnectsSoonAfterDrop(t *testing.T) {
	rs := newRouteServer(t)
	sp, err := New(Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Peers: []Peer{{
		Address: netip.MustParseAddr("127.0.0.2"), ASN: 65515, Port: rs.port, Source: netip.MustParseAddr("127.0.0.1"),
		Hold: 3 * time.Second, Keepalive: time.Second, ConnectRetry: time.Second, IdleHoldAfterReset: time.Second,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Stop(context.Background()) })
	waitFor(t, "session established", func() bool { return sp.Peers(ctx)[0].Established })

	dropped := time.Now()
	if err := rs.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drop seen", func() bool { return sp.Peers(ctx)[0].Flaps == 1 })
	waitFor(t, "re-established", func() bool { return sp.Peers(ctx)[0].Established })
	if took := time.Since(dropped); took > 5500*time.Millisecond {
		t.Fatalf("re-established %v after the drop; GoBGP's own idle wait alone is 5s", took)
	}
}

func TestNewRejects(t *testing.T) {
	rid := netip.MustParseAddr("10.0.0.1")
	for name, cfg := range map[string]Config{
		"no asn":       {RouterID: rid},
		"v6 router id": {ASN: 1, RouterID: netip.MustParseAddr("::1")},
		"dup peer": {ASN: 1, RouterID: rid, Peers: []Peer{
			{Address: netip.MustParseAddr("10.0.0.2"), ASN: 2}, {Address: netip.MustParseAddr("10.0.0.2"), ASN: 2}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestAPIPeer(t *testing.T) {
	p := Peer{Address: netip.MustParseAddr("10.1.1.4"), ASN: 65515, MultihopTTL: 2, Hold: 9 * time.Second,
		Keepalive: 3 * time.Second, ConnectRetry: 5 * time.Second, IdleHoldAfterReset: 3 * time.Second,
		BFD: &BFD{MinTx: 300 * time.Millisecond, MinRx: 300 * time.Millisecond, Multiplier: 3}}
	off := apiPeer(p, false)
	if off.Bfd != nil {
		t.Errorf("BFD set while the session is not established: %v", off.Bfd)
	}
	if off.EbgpMultihop == nil || off.EbgpMultihop.MultihopTtl != 2 {
		t.Errorf("multihop = %v", off.EbgpMultihop)
	}
	tc := off.Timers.Config
	if tc.HoldTime != 9 || tc.KeepaliveInterval != 3 || tc.ConnectRetry != 5 || tc.IdleHoldTimeAfterReset != 3 {
		t.Errorf("timers = %v", tc)
	}
	on := apiPeer(p, true)
	if on.Bfd == nil || on.Bfd.DesiredMinimumTxInterval != 300000 || on.Bfd.DetectionMultiplier != 3 {
		t.Errorf("BFD on = %v", on.Bfd)
	}
	if got := stateName(bgp.BGP_FSM_ESTABLISHED); got != "established" {
		t.Errorf("stateName = %q", got)
	}
	if got := stateName(bgp.FSMState(42)); got != "state"+strconv.Itoa(42) {
		t.Errorf("stateName(42) = %q", got)
	}
}

// TestRejectsEveryRouteReceived: the route server announces a prefix;
// the speaker receives it and its table stays empty (import policy
// reject; GoBGP's accepted count is taken before the global policy).
func TestRejectsEveryRouteReceived(t *testing.T) {
	rs := newRouteServer(t)
	sp, err := New(Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Peers: []Peer{{
		Address: netip.MustParseAddr("127.0.0.2"), ASN: 65515, Port: rs.port, Source: netip.MustParseAddr("127.0.0.1"),
		Hold: 3 * time.Second, Keepalive: time.Second, ConnectRetry: time.Second, IdleHoldAfterReset: time.Second,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Stop(context.Background()) })
	waitFor(t, "session established", func() bool { return sp.Peers(ctx)[0].Established })
	path, err := sp.path(Route{Prefix: netip.MustParsePrefix("0.0.0.0/0")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the route server's default route received", func() bool { return sp.Peers(ctx)[0].Received == 1 })
	n := 0
	if err := sp.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(bgp.NLRI, []*apiutil.Path) { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d received prefixes in the speaker's table", n)
	}
}

func TestAPIPeerPassword(t *testing.T) {
	if c := apiPeer(Peer{Address: netip.MustParseAddr("10.1.1.4"), ASN: 65515, Password: "s3cret"}, false).Conf; c.AuthPassword != "s3cret" {
		t.Fatalf("TCP-MD5 password not set: %+v", c)
	}
}

// A peer sending more prefixes than max_prefixes is torn down, and with
// max_prefixes 0 at its first one; without a limit it stays up.
func TestMaxPrefixesTearsDown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		peer   Peer
		send   int
		torn   bool
		remain bool
	}{
		{name: "limit 2, 3 sent", peer: Peer{MaxPrefixes: 2}, send: 3, torn: true},
		{name: "limit 0, 1 sent", peer: Peer{NoPrefixes: true}, send: 1, torn: true},
		{name: "limit 2, 2 sent", peer: Peer{MaxPrefixes: 2}, send: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRouteServer(t)
			p := tc.peer
			p.Address, p.ASN, p.Port, p.Source = netip.MustParseAddr("127.0.0.2"), 65515, rs.port, netip.MustParseAddr("127.0.0.1")
			p.Hold, p.Keepalive, p.ConnectRetry, p.IdleHoldAfterReset = 3*time.Second, time.Second, time.Second, time.Hour
			sp, err := New(Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Peers: []Peer{p}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := sp.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sp.Stop(context.Background()) })
			waitFor(t, "session established", func() bool { return sp.Peers(ctx)[0].Established })
			var paths []*apiutil.Path
			for i := range tc.send {
				path, err := sp.path(Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)})
				if err != nil {
					t.Fatal(err)
				}
				paths = append(paths, path)
			}
			if _, err := rs.srv.AddPath(apiutil.AddPathRequest{Paths: paths}); err != nil {
				t.Fatal(err)
			}
			if tc.torn {
				waitFor(t, "the session torn down", func() bool { st := sp.Peers(ctx)[0]; return st.Flaps == 1 && !st.Established })
				return
			}
			waitFor(t, "the prefixes received", func() bool { return sp.Peers(ctx)[0].Received == uint64(tc.send) })
			if st := sp.Peers(ctx)[0]; !st.Established || st.Flaps != 0 {
				t.Fatalf("a peer within its limit was torn down: %+v", st)
			}
		})
	}
}
