package cloud

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/provider/azure"
	"github.com/batonha/baton/internal/retry"
)

// azureAction is the real routes action for node i over the real SDK,
// pointed at the emulator with a custom cloud configuration and a fake
// token credential.
func azureAction(t *testing.T, url string, i int, peerTargets bool) *routes.Action {
	t.Helper()
	cfg := routes.Config{Cloud: "azure", StateDir: t.TempDir(), Attempts: 4, Azure: &routes.Azure{
		SubscriptionID: Subscription, TableIDs: []string{AzureClientTable, AzureServerTable},
		PeerTargets: peerTargets, PeerIP: lab.FrontAddr(1 - i), LocalIP: lab.FrontAddr(i), Endpoint: url,
	}}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	cl, err := azure.New(azure.Options{SubscriptionID: Subscription, Endpoint: url, Credential: &azfake.TokenCredential{}, PollFrequency: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a, err := routes.NewAzure(cfg, cl, routes.Options{Logger: slog.New(slog.DiscardHandler), Backoff: retry.Backoff{Base: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestARMRoutesActionOverTheSDK(t *testing.T) {
	s := New(Options{ARMPolls: 2})
	if err := SeedAzure(s, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changes []RouteChange
	s.OnRouteChange(func(c RouteChange) { mu.Lock(); changes = append(changes, c); mu.Unlock() })
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	b := azureAction(t, hs.URL, 1, true)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := b.Activate(ctx, action.Takeover{Term: 2, Reason: "peer_gone"}); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	hop := func(table, prefix string) string {
		for _, r := range s.AzureRoutes(table) {
			if r.Prefix == prefix {
				return r.NextHopIP
			}
		}
		return ""
	}
	if hop(AzureClientTable, ServerNet) != lab.BFront || hop(AzureServerTable, ClientNet) != lab.BFront {
		t.Fatalf("routes not moved to nva-b: %+v %+v", s.AzureRoutes(AzureClientTable), s.AzureRoutes(AzureServerTable))
	}
	if hop(AzureClientTable, UnownedPrefix) != OtherApplianceIP {
		t.Error("a route of another appliance moved")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 {
		t.Errorf("route changes %+v, want 2", changes)
	}
	cnt := s.Counts()
	// One whole-table PUT per table, each polled until done (2 InProgress
	// + 1 Succeeded); no route-by-route writes.
	if cnt.ByOp["ARM PUT routeTable"] != 2 || cnt.ByOp["ARM GET operation"] != 6 || cnt.ByOp["ARM PUT routes"] != 0 {
		t.Errorf("counts %+v", cnt)
	}

	// Give-back by the preferred node (capture-only, no peer targets):
	// it first captures while active, then takes its routes back.
	a := azureAction(t, hs.URL, 0, false)
	if err := a.Activate(ctx, action.Takeover{Term: 3, Reason: "preempt"}); err != nil {
		t.Fatal(err)
	}
	if hop(AzureClientTable, ServerNet) != lab.BFront {
		t.Fatal("a node without a capture took a route it never owned")
	}
}

func TestARMThrottleAnswers429WithRetryAfter(t *testing.T) {
	s := New(Options{Rate: 1, Burst: 1})
	if err := SeedAzure(s, 0); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	get := func() *http.Response {
		resp, err := http.Get(hs.URL + AzureClientTable + "?api-version=2024-05-01")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get(); r.StatusCode != 200 {
		t.Fatalf("first GET: %d", r.StatusCode)
	}
	r := get()
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("second GET: %d Retry-After %q, want 429 with 1", r.StatusCode, r.Header.Get("Retry-After"))
	}
}

func TestParseARMPath(t *testing.T) {
	good := map[string]armPath{
		"/subscriptions/S/providers/Microsoft.Network/routeTables":                             {sub: "S", list: true},
		"/subscriptions/S/resourceGroups/G/providers/Microsoft.Network/routeTables":            {sub: "S", group: "G", list: true},
		"/subscriptions/S/resourcegroups/G/providers/microsoft.network/routetables/T":          {sub: "S", group: "G", table: "T"},
		"/subscriptions/S/resourceGroups/G/providers/Microsoft.Network/routeTables/T/routes/R": {sub: "S", group: "G", table: "T", route: "R"},
		"/subscriptions/S/providers/Microsoft.Network/locations/L/operations/op-1":             {sub: "S", op: "op-1"},
	}
	for p, want := range good {
		got, err := parseARMPath(p)
		if err != nil || got != want {
			t.Errorf("%s → %+v, %v; want %+v", p, got, err, want)
		}
	}
	for _, p := range []string{"/", "/subscriptions", "/subscriptions/S/providers/Microsoft.Compute/virtualMachines",
		"/subscriptions/S/providers/Microsoft.Network/routeTables/T", "/subscriptions//resourceGroups/G/providers/Microsoft.Network/routeTables/T"} {
		if _, err := parseARMPath(p); err == nil {
			t.Errorf("%s accepted", p)
		}
	}
}

// FuzzParseARMPath checks that no path makes the ARM router panic and that
// an accepted path names exactly one kind of resource.
func FuzzParseARMPath(f *testing.F) {
	f.Add("/subscriptions/S/resourceGroups/G/providers/Microsoft.Network/routeTables/T/routes/R")
	f.Add("/subscriptions/S/providers/Microsoft.Network/locations/L/operations/op-1")
	f.Add("/subscriptions/S/providers/Microsoft.Network/routeTables")
	f.Add("//subscriptions//")
	f.Fuzz(func(t *testing.T, path string) {
		p, err := parseARMPath(path)
		if err != nil {
			return
		}
		kinds := 0
		for _, b := range []bool{p.list, p.op != "", p.table != "" && p.route == "", p.route != ""} {
			if b {
				kinds++
			}
		}
		if kinds != 1 || p.sub == "" || strings.Contains(p.sub, "/") {
			t.Fatalf("%q → %+v", path, p)
		}
	})
}

// TestARMSerializedTableWrites: with ARMOperation a table takes one write
// at a time (409 AnotherOperationInProgress with Retry-After), and a table
// write with a stale If-Match gets 412.
func TestARMSerializedTableWrites(t *testing.T) {
	s := New(Options{ARMOperation: time.Hour})
	if err := SeedAzure(s, 0); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	put := func(table, ifMatch, body string) *http.Response {
		req, err := http.NewRequest(http.MethodPut, hs.URL+table+"?api-version=2024-05-01", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	table := `{"properties":{"routes":[{"name":"to-server","properties":{"addressPrefix":"10.100.2.0/24","nextHopType":"VirtualAppliance","nextHopIpAddress":"10.100.1.12"}}]}}`
	if r := put(AzureClientTable, `W/"0"`, table); r.StatusCode != http.StatusCreated || r.Header.Get("Azure-AsyncOperation") == "" {
		t.Fatalf("first write: %d, Azure-AsyncOperation %q", r.StatusCode, r.Header.Get("Azure-AsyncOperation"))
	}
	if r := put(AzureClientTable, "", table); r.StatusCode != http.StatusConflict {
		t.Fatalf("write during a write: %d, want 409", r.StatusCode)
	}
	route := `{"properties":{"addressPrefix":"10.100.2.0/24","nextHopType":"VirtualAppliance","nextHopIpAddress":"10.100.1.12"}}`
	if r := put(AzureClientTable+"/routes/to-server", "", route); r.StatusCode != http.StatusConflict || r.Header.Get("Retry-After") == "" {
		t.Fatalf("route write during a table write: %d (Retry-After %q), want 409 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := put(AzureServerTable, `W/"7"`, table); r.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: %d, want 412", r.StatusCode)
	}
}
