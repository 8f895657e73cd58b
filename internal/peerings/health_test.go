package peerings

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

type listInventory []Instance

func (l listInventory) Instances(context.Context) ([]Instance, error) { return l, nil }

// serveOn listens on ip:port (port 0: any) and answers code; it returns
// the port.
func serveOn(t *testing.T, ip string, port, code int) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listening on %s:%d: %v", ip, port, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// Only the instances whose own health endpoint answers 200 peer: the
// ACTIVE one (200), not the one whose baton is FAULT (503) nor the one
// that does not answer; when none answers at all the round fails instead
// of removing every peering.
func TestHealthyKeepsOnlyActiveInstances(t *testing.T) {
	port := serveOn(t, "127.0.0.2", 0, http.StatusOK)
	serveOn(t, "127.0.0.3", port, http.StatusServiceUnavailable)
	inv := listInventory{{Name: "vm0", IP: "127.0.0.2"}, {Name: "vm1", IP: "127.0.0.3"}, {Name: "vm2", IP: "127.0.0.4"}}
	c := HealthConfig{Port: port, Path: "/", Timeout: 2 * time.Second}
	got, err := Healthy(inv, c, nil).Instances(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []Instance{{Name: "vm0", IP: "127.0.0.2"}}) {
		t.Fatalf("healthy instances %v, want only vm0", got)
	}

	// Nobody answers (say the NSG blocks the port): no verdict.
	none := listInventory{{Name: "vm2", IP: "127.0.0.4"}, {Name: "vm3", IP: "127.0.0.5"}}
	if got, err := Healthy(none, c, nil).Instances(context.Background()); err == nil || !strings.Contains(err.Error(), "keeping the peerings") {
		t.Fatalf("no answer at all: %v, %v; want an error that keeps the peerings", got, err)
	}
	// All answer 503: all unhealthy, an empty set (they all withdrew).
	down := listInventory{{Name: "vm1", IP: "127.0.0.3"}}
	if got, err := Healthy(down, c, nil).Instances(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("all FAULT: %v, %v; want none healthy", got, err)
	}
}
