package cloud

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
)

const echoPort = 7008

// serveEcho answers UDP datagrams on the server.
func serveEcho(t *testing.T, h *lab.Host) {
	t.Helper()
	e, err := lab.StartUDPServer(h, "udp", fmt.Sprintf(":%d", echoPort), func(req []byte) []byte { return req })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
}

// reaches sends one datagram from the client to the server's echo.
func reaches(t *testing.T, tp *Topology) bool {
	c, err := tp.Client.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP(ServerAddr), Port: echoPort}); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, _, err = c.ReadFrom(make([]byte, 8))
	return err == nil
}

func rxPackets(t *testing.T, h *lab.Host) uint64 {
	l, err := h.Handle().LinkByName(lab.IfFront)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Statistics.RxPackets
}

func TestTopologyTrafficFollowsEmulatedRoutes(t *testing.T) {
	labtest.RequireRoot(t)
	tp, err := NewTopology(lab.RandomPrefix(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("tearing down: %v", err)
		}
	})
	s := New(Options{})
	t.Cleanup(func() { s.Close() })
	SeedAWS(s, 0)
	if err := tp.Connect(s, "aws"); err != nil {
		t.Fatal(err)
	}
	serveEcho(t, tp.Server)
	if !reaches(t, tp) {
		t.Fatal("client does not reach the server through nva-a")
	}
	if gw, err := tp.Router.Gateway(RTBClient, ServerNet); err != nil || gw != lab.AFront {
		t.Fatalf("fabric route to the server via %q (%v), want %s", gw, err, lab.AFront)
	}
	// nva-a dies (its data interface goes down): traffic stops until the
	// route table changes.
	if err := tp.A.SetLink(lab.IfFront, false); err != nil {
		t.Fatal(err)
	}
	if reaches(t, tp) {
		t.Fatal("traffic flows with the route table's target down")
	}
	// nva-b points the routes at itself through the control plane, from
	// its own namespace over the management segment.
	hc := &http.Client{Transport: &http.Transport{DialContext: tp.B.DialContext}}
	c := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: awssdk.String(Endpoint()), RetryMaxAttempts: 1, HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range [][2]string{{RTBClient, ServerNet}, {RTBServer, ClientNet}} {
		if _, err := c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: awssdk.String(r[0]), DestinationCidrBlock: awssdk.String(r[1]), NetworkInterfaceId: awssdk.String(ENIB)}); err != nil {
			t.Fatalf("ReplaceRoute from nva-b: %v", err)
		}
	}
	before := rxPackets(t, tp.B)
	if !reaches(t, tp) {
		t.Fatal("client does not reach the server after the route moved to nva-b")
	}
	if got := rxPackets(t, tp.B) - before; got < 2 {
		t.Errorf("nva-b received %d packets for one echo, want both directions through it", got)
	}
	if gw, _ := tp.Router.Gateway(RTBServer, ClientNet); gw != lab.BFront {
		t.Errorf("return route via %q, want %s", gw, lab.BFront)
	}
	if gw, _ := tp.Router.Gateway(RTBClient, UnownedPrefix); gw != "blackhole" {
		t.Errorf("route to an unknown appliance is %q, want a blackhole", gw)
	}
	if err := tp.Router.Err(); err != nil {
		t.Fatal(err)
	}
}
