package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/cloud"
	"github.com/batonha/baton/internal/lab/labtest"
)

const routesEchoPort = 7009

// routesEnv is the cloud topology with two baton daemons whose routes
// action drives the emulated control plane.
type routesEnv struct {
	*env
	topo *cloud.Topology
	api  *cloud.Server
}

// routesYAML is node i's routes section: nva-a (preferred) owns routes
// only through its capture; nva-b takes every route that points at nva-a.
func routesYAML(i int) string {
	peerTargets := i == 1
	return fmt.Sprintf(`routes:
  cloud: aws
  reconcile: 500ms
  attempts: 4
  aws:
    region: us-east-1
    endpoint: %q
    table_ids: [%s, %s]
    local_eni: %s
    peer_eni: %s
    peer_targets: %t
`, cloud.Endpoint(), cloud.RTBClient, cloud.RTBServer, cloud.ENI(i), cloud.ENI(1-i), peerTargets)
}

func newRoutesEnv(t *testing.T) *routesEnv {
	t.Helper()
	labtest.RequireRoot(t)
	bin := batonBin(t)
	// The daemons find these through the SDK's default credential chain;
	// instance metadata is off so nothing waits for 169.254.169.254.
	t.Setenv("AWS_ACCESS_KEY_ID", "lab")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "lab")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tp, err := cloud.NewTopology(lab.RandomPrefix(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("tearing down lab: %v", err)
		}
	})
	api := cloud.New(cloud.Options{Latency: 20 * time.Millisecond})
	t.Cleanup(func() { api.Close() })
	cloud.SeedAWS(api, 0)
	if err := tp.Connect(api, "aws"); err != nil {
		t.Fatal(err)
	}
	opts := [2]lab.NodeOptions{
		{Priority: 200, Preempt: true, Interval: interval, Misses: 3},
		{Priority: 100, Preempt: true, Interval: interval, Misses: 3},
	}
	dir := t.TempDir()
	nodes, err := lab.SetupBatonNodes(tp.Pair(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		f, err := os.OpenFile(n.Config, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.WriteString(f, routesYAML(i))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	e := &routesEnv{env: &env{t: t, pair: tp.Pair(), nodes: nodes, bin: bin}, topo: tp, api: api}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				b, _ := os.ReadFile(n.LogPath)
				lines := strings.Split(string(b), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("--- %s log (tail) ---\n%s", lab.ApplianceName(n.Index), strings.Join(lines, "\n"))
			}
		}
	})
	routesServeEcho(t, tp.Server, routesEchoPort)
	return e
}

// routesServeEcho answers every UDP datagram to port on h with itself.
func routesServeEcho(t *testing.T, h *lab.Host, port int) {
	t.Helper()
	e, err := lab.StartUDPServer(h, "udp", fmt.Sprintf(":%d", port), func(req []byte) []byte { return req })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
}

// flow sends a numbered datagram from the client to the server's echo every
// 10 ms and records when each answer came back.
type flow struct {
	conn net.PacketConn
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	replies []time.Time
}

const (
	flowEvery = 10 * time.Millisecond
	flowMax   = 6000 // bounds the flow to 60 s of packets
)

func startFlow(t *testing.T, tp *cloud.Topology) *flow {
	t.Helper()
	c, err := tp.Client.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flow{conn: c, stop: make(chan struct{}), done: make(chan struct{})}
	dst := &net.UDPAddr{IP: net.ParseIP(cloud.ServerAddr), Port: routesEchoPort}
	go func() {
		buf := make([]byte, 16)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			f.mu.Lock()
			f.replies = append(f.replies, time.Now())
			f.mu.Unlock()
		}
	}()
	go func() {
		defer close(f.done)
		tick := time.NewTicker(flowEvery)
		defer tick.Stop()
		var b [8]byte
		for seq := uint64(0); seq < flowMax; seq++ {
			binary.BigEndian.PutUint64(b[:], seq)
			_, _ = c.WriteTo(b[:], dst)
			select {
			case <-tick.C:
			case <-f.stop:
				return
			}
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *flow) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
	f.conn.Close()
}

// repliesSince counts answers received after t0.
func (f *flow) repliesSince(t0 time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.replies {
		if r.After(t0) {
			n++
		}
	}
	return n
}

// gap is the longest time without an answer after t0.
func (f *flow) gap(t0 time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev, longest := t0, time.Duration(0)
	for _, r := range f.replies {
		if r.Before(t0) {
			continue
		}
		longest = max(longest, r.Sub(prev))
		prev = r
	}
	return longest
}

func (e *routesEnv) rx(i int) uint64 {
	l, err := e.topo.Appliances()[i].Handle().LinkByName(lab.IfFront)
	if err != nil {
		e.t.Fatal(err)
	}
	return l.Attrs().Statistics.RxPackets
}

// targets returns where the two data-path routes and the unowned route
// point in the emulated route tables.
func (e *routesEnv) targets() (toServer, toClient, unowned string) {
	f := e.api.EC2()
	return f.Target(cloud.RTBClient, cloud.ServerNet), f.Target(cloud.RTBServer, cloud.ClientNet), f.Target(cloud.RTBClient, cloud.UnownedPrefix)
}

// cloudStatus reads subsystems.cloud of node i's status.
func (e *routesEnv) cloudStatus(i int) (routes []map[string]any, owned []map[string]any) {
	st, err := e.status(i)
	if err != nil {
		return nil, nil
	}
	b, _ := json.Marshal(st.Subsystems["cloud"])
	var v struct {
		Routes []map[string]any `json:"routes"`
		Owned  []map[string]any `json:"owned_routes"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Routes, v.Owned
}

// TestRoutesFailoverCarriesTraffic kills the active appliance of an AWS
// pair steered by route tables: the standby points the client and server
// subnets' routes at its ENI through the emulated EC2 API (the real SDK in
// the real binary), the fabric router follows the route tables, and the
// client's traffic to the server flows through the standby. The preferred
// node then comes back and takes back exactly the routes it owned.
func TestRoutesFailoverCarriesTraffic(t *testing.T) {
	e := newRoutesEnv(t)
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)
	e.allPathsUp(5 * time.Second)
	// The preferred node captures the routes that point at it.
	e.eventually("nva-a captured both routes", 5*time.Second, func() bool {
		_, owned := e.cloudStatus(0)
		return len(owned) == 2
	})
	fl := startFlow(t, e.topo)
	e.eventually("traffic flows through nva-a", 5*time.Second, func() bool { return fl.repliesSince(time.Now().Add(-100*time.Millisecond)) > 3 })

	// nva-a dies: its daemon and its data interface.
	killed := time.Now()
	e.kill(0, syscall.SIGKILL)
	if err := e.topo.SetAppliance(0, false); err != nil {
		t.Fatal(err)
	}
	e.eventually("nva-b active and both routes on its ENI", 10*time.Second, func() bool {
		s, c, _ := e.targets()
		return e.role(1) == "ACTIVE" && s == cloud.ENIB && c == cloud.ENIB
	})
	routed := time.Now()
	rxB := e.rx(1)
	e.eventually("traffic flows again", 5*time.Second, func() bool { return fl.repliesSince(routed) > 20 })
	gap := fl.gap(killed)
	t.Logf("traffic gap %v (kill → routes moved %v)", gap, routed.Sub(killed))
	if gap > 5*time.Second {
		t.Errorf("traffic gap %v, want under 5s", gap)
	}
	if got := e.rx(1) - rxB; got < 40 {
		t.Errorf("nva-b forwarded %d packets for >20 echoes: traffic does not flow through it", got)
	}
	if _, _, u := e.targets(); u != cloud.ENIOther {
		t.Errorf("route of another appliance now points at %s", u)
	}
	if err := e.topo.Router.Err(); err != nil {
		t.Fatal(err)
	}
	rs, _ := e.cloudStatus(1)
	if len(rs) != 2 {
		t.Errorf("nva-b status shows %d route changes, want 2: %+v", len(rs), rs)
	}
	for _, r := range rs {
		if r["Err"] != nil || r["From"] != cloud.ENIA || r["Duration"] == float64(0) {
			t.Errorf("route status %+v, want moved from %s with a duration", r, cloud.ENIA)
		}
	}

	// nva-a returns and preempts: it takes back exactly its captured routes.
	if err := e.topo.SetAppliance(0, true); err != nil {
		t.Fatal(err)
	}
	e.start(0)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)
	e.eventually("routes given back to nva-a", 10*time.Second, func() bool {
		s, c, _ := e.targets()
		return s == cloud.ENIA && c == cloud.ENIA
	})
	back := time.Now()
	rxA := e.rx(0)
	e.eventually("traffic through nva-a again", 5*time.Second, func() bool { return fl.repliesSince(back) > 20 })
	if got := e.rx(0) - rxA; got < 40 {
		t.Errorf("nva-a forwarded %d packets after give-back", got)
	}
	if _, _, u := e.targets(); u != cloud.ENIOther {
		t.Errorf("give-back moved a route nva-a never owned: %s", u)
	}
	data, err := os.ReadFile(filepath.Join(e.nodes[0].Dir, "state", "routes.json"))
	if err != nil || strings.Contains(string(data), cloud.UnownedPrefix) || !strings.Contains(string(data), cloud.ServerNet) {
		t.Errorf("nva-a capture: %v\n%s", err, data)
	}
}
