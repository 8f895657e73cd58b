package routes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6/fake"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/azure"
)

const (
	sub     = "00000000-0000-0000-0000-000000000001"
	azLocal = "10.1.0.4"
	azPeer  = "10.1.0.5"
)

func tableID(rg, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/routeTables/%s", sub, rg, name)
}

// azCloud is the state behind the SDK's fake servers: route tables with
// routes, and a script of faults. Every call goes through the real
// armnetwork clients and azcore pipeline.
type azCloud struct {
	mu     sync.Mutex
	tables map[string]*armnetwork.RouteTable // by name
	// fault, when set, is asked before each route PUT; it returns an HTTP
	// status and ARM error code to fail with (0 = succeed).
	fault func(table, route string) (int, string)
	// lroFail makes the long-running operation end in this error code.
	lroFail func(table, route string) string
	puts    int
	// tagConflict makes UpdateTags answer 412 (the If-Match ETag is stale).
	tagConflict bool
	// tablePuts counts whole-table writes; etagConflicts makes that many
	// of them answer 412 (another writer changed the table since the GET).
	tablePuts, etagConflicts int
}

func newAzCloud() *azCloud {
	c := &azCloud{tables: map[string]*armnetwork.RouteTable{}}
	c.add("rg1", "rt-a", map[string]string{"ha": "pair1"}, [][3]string{
		{"default", "0.0.0.0/0", azPeer},
		{"onprem", "192.168.0.0/16", azPeer},
		{"other", "10.50.0.0/16", "10.1.0.9"},
		{"internet", "203.0.113.0/24", "Internet"},
	})
	c.add("rg1", "rt-b", map[string]string{"ha": "pair1"}, [][3]string{{"default", "0.0.0.0/0", azPeer}})
	c.add("rg2", "rt-c", nil, [][3]string{{"default", "0.0.0.0/0", azPeer}})
	return c
}

func (c *azCloud) add(rg, name string, tags map[string]string, routes [][3]string) {
	rt := &armnetwork.RouteTable{ID: to.Ptr(tableID(rg, name)), Name: to.Ptr(name), Tags: map[string]*string{},
		Etag: to.Ptr(`W/"` + name + `"`), Properties: &armnetwork.RouteTablePropertiesFormat{}}
	for k, v := range tags {
		rt.Tags[k] = to.Ptr(v)
	}
	for _, r := range routes {
		rt.Properties.Routes = append(rt.Properties.Routes, mkRoute(r[0], r[1], r[2]))
	}
	c.tables[name] = rt
}

func mkRoute(name, prefix, hop string) *armnetwork.Route {
	p := &armnetwork.RoutePropertiesFormat{AddressPrefix: to.Ptr(prefix)}
	if strings.Contains(hop, ".") {
		p.NextHopType = to.Ptr(armnetwork.RouteNextHopTypeVirtualAppliance)
		p.NextHopIPAddress = to.Ptr(hop)
	} else {
		p.NextHopType = to.Ptr(armnetwork.RouteNextHopType(hop))
	}
	return &armnetwork.Route{Name: to.Ptr(name), Properties: p}
}

func (c *azCloud) hop(table, prefix string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.tables[table].Properties.Routes {
		if *r.Properties.AddressPrefix == prefix {
			if r.Properties.NextHopIPAddress != nil {
				return *r.Properties.NextHopIPAddress
			}
			return string(*r.Properties.NextHopType)
		}
	}
	return ""
}

func clone(rt *armnetwork.RouteTable) armnetwork.RouteTable {
	c := *rt
	p := *rt.Properties
	p.Routes = nil
	for _, r := range rt.Properties.Routes {
		rc := *r
		pc := *r.Properties
		rc.Properties = &pc
		p.Routes = append(p.Routes, &rc)
	}
	c.Properties = &p
	return c
}

func (c *azCloud) factory() *fake.ServerFactory {
	return &fake.ServerFactory{
		RouteTablesServer: fake.RouteTablesServer{
			Get: func(ctx context.Context, rg, name string, _ *armnetwork.RouteTablesClientGetOptions) (resp azfake.Responder[armnetwork.RouteTablesClientGetResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				rt, ok := c.tables[name]
				if !ok || !strings.Contains(*rt.ID, "/"+rg+"/") {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armnetwork.RouteTablesClientGetResponse{RouteTable: clone(rt)}, nil)
				return
			},
			UpdateTags: func(ctx context.Context, rg, name string, params armnetwork.TagsObject, _ *armnetwork.RouteTablesClientUpdateTagsOptions) (resp azfake.Responder[armnetwork.RouteTablesClientUpdateTagsResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.tagConflict {
					errResp.SetResponseError(http.StatusPreconditionFailed, "PreconditionFailed")
					return
				}
				rt := c.tables[name]
				rt.Tags = params.Tags
				resp.SetResponse(http.StatusOK, armnetwork.RouteTablesClientUpdateTagsResponse{RouteTable: clone(rt)}, nil)
				return
			},
			BeginCreateOrUpdate: func(ctx context.Context, rg, name string, params armnetwork.RouteTable, _ *armnetwork.RouteTablesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.RouteTablesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.tablePuts++
				if c.etagConflicts > 0 {
					c.etagConflicts--
					errResp.SetResponseError(http.StatusPreconditionFailed, "PreconditionFailed")
					return
				}
				rt := c.tables[name]
				rt.Tags, rt.Properties = params.Tags, params.Properties
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
				resp.SetTerminalResponse(http.StatusOK, armnetwork.RouteTablesClientCreateOrUpdateResponse{RouteTable: clone(rt)}, nil)
				return
			},
			NewListAllPager: func(_ *armnetwork.RouteTablesClientListAllOptions) (resp azfake.PagerResponder[armnetwork.RouteTablesClientListAllResponse]) {
				c.mu.Lock()
				defer c.mu.Unlock()
				// Two pages, to exercise paging.
				var all []*armnetwork.RouteTable
				for _, n := range []string{"rt-a", "rt-b", "rt-c"} {
					rt := clone(c.tables[n])
					all = append(all, &rt)
				}
				resp.AddPage(http.StatusOK, armnetwork.RouteTablesClientListAllResponse{RouteTableListResult: armnetwork.RouteTableListResult{Value: all[:1]}}, nil)
				resp.AddPage(http.StatusOK, armnetwork.RouteTablesClientListAllResponse{RouteTableListResult: armnetwork.RouteTableListResult{Value: all[1:]}}, nil)
				return
			},
		},
		RoutesServer: fake.RoutesServer{
			BeginCreateOrUpdate: func(ctx context.Context, rg, table, name string, params armnetwork.Route, _ *armnetwork.RoutesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.RoutesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.puts++
				if c.fault != nil {
					if code, ec := c.fault(table, name); code != 0 {
						errResp.SetResponseError(code, ec)
						return
					}
				}
				rt, ok := c.tables[table]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
				resp.AddNonTerminalResponse(http.StatusOK, nil)
				if c.lroFail != nil {
					if ec := c.lroFail(table, name); ec != "" {
						resp.SetTerminalError(http.StatusBadRequest, ec)
						return
					}
				}
				nr := &armnetwork.Route{Name: to.Ptr(name), Properties: params.Properties}
				replaced := false
				for i, r := range rt.Properties.Routes {
					if *r.Name == name {
						rt.Properties.Routes[i] = nr
						replaced = true
					}
				}
				if !replaced {
					rt.Properties.Routes = append(rt.Properties.Routes, nr)
				}
				resp.SetTerminalResponse(http.StatusOK, armnetwork.RoutesClientCreateOrUpdateResponse{Route: *nr}, nil)
				return
			},
		},
	}
}

// headerTransport adds Retry-After to throttled and conflicting responses,
// as ARM does, and counts requests.
type headerTransport struct {
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
	retryAfter string
	mu         sync.Mutex
	requests   int
	ifMatch    []string // If-Match headers sent
}

func (h *headerTransport) Do(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.requests++
	if v := req.Header.Get("If-Match"); v != "" {
		h.ifMatch = append(h.ifMatch, v)
	}
	h.mu.Unlock()
	resp, err := h.next.Do(req)
	// The fake transport returns failures as *azcore.ResponseError with a
	// synthesized RawResponse; real ARM responses carry the header.
	raw := resp
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		raw = re.RawResponse
	}
	if raw != nil && (raw.StatusCode == http.StatusTooManyRequests || raw.StatusCode == http.StatusConflict) && h.retryAfter != "" {
		raw.Header.Set("Retry-After", h.retryAfter)
	}
	return resp, err
}

func azCfg(dir string, mod func(*Azure)) Config {
	c := Config{Cloud: "azure", StateDir: dir, Azure: &Azure{
		SubscriptionID: sub, TableIDs: []string{tableID("rg1", "rt-a"), tableID("rg1", "rt-b")},
		PeerTargets: true, PeerIP: azPeer, LocalIP: azLocal,
	}}
	if mod != nil {
		mod(c.Azure)
	}
	return c
}

// newAzure builds an action that writes route by route (the tests of
// per-route error handling); newAzureTables one that writes whole tables.
func newAzure(t *testing.T, cfg Config, c *azCloud, fk *clock.Fake, retryAfter string) (*Action, *headerTransport) {
	t.Helper()
	return newAzureWith(t, cfg, c, fk, retryAfter, true)
}

func newAzureTables(t *testing.T, cfg Config, c *azCloud, fk *clock.Fake) (*Action, *headerTransport) {
	t.Helper()
	return newAzureWith(t, cfg, c, fk, "", false)
}

func newAzureWith(t *testing.T, cfg Config, c *azCloud, fk *clock.Fake, retryAfter string, perRoute bool) (*Action, *headerTransport) {
	t.Helper()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config invalid: %v", errs)
	}
	tr := &headerTransport{next: fake.NewServerFactoryTransport(c.factory()), retryAfter: retryAfter}
	clients, err := azure.New(azure.Options{SubscriptionID: sub, Credential: &azfake.TokenCredential{}, Transport: tr, PollFrequency: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t, fk, cfg.StateDir)
	opts.PerRoute = perRoute
	a, err := NewAzure(cfg, clients, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a, tr
}

func TestAzurePeerTargetsTakeoverWithLRO(t *testing.T) {
	fk := clock.NewFake(epoch)
	c := newAzCloud()
	a, tr := newAzure(t, azCfg(t.TempDir(), nil), c, fk, "")
	if err := activate(t, fk, a); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	for _, x := range []struct{ table, prefix, want string }{
		{"rt-a", "0.0.0.0/0", azLocal},
		{"rt-a", "192.168.0.0/16", azLocal},
		{"rt-a", "10.50.0.0/16", "10.1.0.9"}, // never owned
		{"rt-a", "203.0.113.0/24", "Internet"},
		{"rt-b", "0.0.0.0/0", azLocal},
		{"rt-c", "0.0.0.0/0", azPeer}, // out of scope
	} {
		if got := c.hop(x.table, x.prefix); got != x.want {
			t.Errorf("%s %s → %s, want %s", x.table, x.prefix, got, x.want)
		}
	}
	// 3 routes × (PUT + 2 polls) + 2 reads + 2 read-backs.
	if tr.requests < 3*3+4 {
		t.Errorf("%d requests: long-running operations were not polled to completion", tr.requests)
	}
	if got := len(a.Owned()); got != 3 {
		t.Errorf("owned %d routes, want 3", got)
	}
}

func TestAzureTagDiscoveryAndCreate(t *testing.T) {
	fk := clock.NewFake(epoch)
	c := newAzCloud()
	cfg := azCfg(t.TempDir(), func(z *Azure) {
		z.TableIDs = nil
		z.Tags = map[string]string{"ha": "pair1"}
		z.PeerTargets = false
		z.Destinations = []string{"172.16.0.0/12"}
		z.CreateMissing = true
	})
	a, _ := newAzure(t, cfg, c, fk, "")
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"rt-a", "rt-b"} {
		if got := c.hop(tb, "172.16.0.0/12"); got != azLocal {
			t.Errorf("%s: created route → %q", tb, got)
		}
	}
	if c.hop("rt-c", "172.16.0.0/12") != "" || c.hop("rt-a", "0.0.0.0/0") != azPeer {
		t.Error("touched a route or table out of scope")
	}
}

func TestAzureThrottlingAndConflictHonourRetryAfter(t *testing.T) {
	for _, x := range []struct {
		status int
		code   string
	}{{http.StatusTooManyRequests, "TooManyRequests"}, {http.StatusConflict, "AnotherOperationInProgress"}} {
		t.Run(x.code, func(t *testing.T) {
			fk := clock.NewFake(epoch)
			c := newAzCloud()
			n := 0
			c.fault = func(table, route string) (int, string) {
				if table == "rt-b" && n < 2 {
					n++
					return x.status, x.code
				}
				return 0, ""
			}
			a, _ := newAzure(t, azCfg(t.TempDir(), nil), c, fk, "5")
			if err := activate(t, fk, a); err != nil {
				t.Fatal(err)
			}
			if c.hop("rt-b", "0.0.0.0/0") != azLocal {
				t.Fatal("rt-b not switched")
			}
			if el := fk.Now().Sub(epoch); el < 10*time.Second {
				t.Errorf("waited %s, want two Retry-After waits of 5s", el)
			}
			for _, s := range a.Status() {
				if s.Table == tableID("rg1", "rt-b") && s.Attempts != 3 {
					t.Errorf("attempts %d, want 3", s.Attempts)
				}
			}
		})
	}
}

func TestAzureServerErrorOneTableOthersSwitch(t *testing.T) {
	fk := clock.NewFake(epoch)
	c := newAzCloud()
	c.fault = func(table, route string) (int, string) {
		if table == "rt-b" {
			return http.StatusInternalServerError, "InternalServerError"
		}
		return 0, ""
	}
	a, _ := newAzure(t, azCfg(t.TempDir(), nil), c, fk, "")
	err := activate(t, fk, a)
	if err == nil || !strings.Contains(err.Error(), "rt-b") {
		t.Fatalf("error = %v, want one naming rt-b", err)
	}
	if c.hop("rt-a", "0.0.0.0/0") != azLocal || c.hop("rt-a", "192.168.0.0/16") != azLocal {
		t.Error("rt-a did not switch while rt-b failed")
	}
	// rt-b was retried: 4 attempts per round, 3 rounds.
	c.mu.Lock()
	puts := c.puts
	c.mu.Unlock()
	if puts != 2+12 {
		t.Errorf("%d route PUTs, want 14", puts)
	}
	// The cloud recovers: the next reconcile converges.
	c.mu.Lock()
	c.fault = nil
	c.mu.Unlock()
	if err := verify(t, fk, a); err != nil {
		t.Fatal(err)
	}
	if c.hop("rt-b", "0.0.0.0/0") != azLocal {
		t.Error("rt-b not repaired by Verify")
	}
}

// A long-running operation that ends in failure surfaces its error, while
// the other tables switch. (The SDK fake keeps a failed poller for the
// same URL, so a retried PUT after a failed operation cannot be scripted;
// retries are covered by the 429/409/5xx tests above.)
func TestAzureLROFailure(t *testing.T) {
	fk := clock.NewFake(epoch)
	c := newAzCloud()
	c.lroFail = func(table, route string) string {
		if table == "rt-b" {
			return "InvalidRouteNextHop"
		}
		return ""
	}
	a, _ := newAzure(t, azCfg(t.TempDir(), nil), c, fk, "")
	err := activate(t, fk, a)
	if err == nil || !strings.Contains(err.Error(), "InvalidRouteNextHop") || !strings.Contains(err.Error(), "rt-b") {
		t.Fatalf("Activate = %v, want the operation's error naming rt-b", err)
	}
	if c.hop("rt-b", "0.0.0.0/0") != azPeer {
		t.Error("failed operation changed the route")
	}
	if c.hop("rt-a", "0.0.0.0/0") != azLocal {
		t.Error("rt-a did not switch")
	}
}

func TestAzureMissingTableAndDenied(t *testing.T) {
	fk := clock.NewFake(epoch)
	c := newAzCloud()
	ghost := tableID("rg1", "rt-ghost")
	a, _ := newAzure(t, azCfg(t.TempDir(), func(z *Azure) { z.TableIDs = append(z.TableIDs, ghost) }), c, fk, "")
	err := drive(t, fk, func() error { return a.Check(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), ghost) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Check = %v, want an error naming %s", err, ghost)
	}
	c.fault = func(table, route string) (int, string) { return http.StatusForbidden, "AuthorizationFailed" }
	a2, _ := newAzure(t, azCfg(t.TempDir(), nil), c, fk, "")
	err = activate(t, fk, a2)
	if err == nil || !strings.Contains(err.Error(), "Microsoft.Network/routeTables/routes/write") {
		t.Fatalf("Activate = %v, want an error naming the permission", err)
	}
}

func TestAzureResourceIDParse(t *testing.T) {
	if _, err := arm.ParseResourceID(tableID("rg1", "rt-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := azure.ParseID(tableID("rg1", "rt-a"), "Microsoft.Network/networkInterfaces"); err == nil {
		t.Error("wrong resource type accepted")
	}
}

func TestAzureFencedWrites(t *testing.T) {
	fk := clock.NewFake(epoch)
	c := newAzCloud()
	// nva-b took over under token 7.
	b, _ := newAzure(t, azCfg(t.TempDir(), func(a *Azure) { a.LocalIP, a.PeerIP = azPeer, azLocal }), c, fk, "")
	if err := drive(t, fk, func() error { return b.Activate(context.Background(), action.Takeover{Term: 3, Token: 7}) }); err != nil {
		t.Fatalf("newer active: %v", err)
	}
	if got := *c.tables["rt-a"].Tags[AzureFenceTag]; got != "7" {
		t.Fatalf("fencing tag %q, want 7", got)
	}
	a, tr := newAzure(t, azCfg(t.TempDir(), nil), c, fk, "")
	err := drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{Term: 2, Token: 5}) })
	if !errors.Is(err, ErrStale) || !errors.Is(err, action.ErrFault) {
		t.Fatalf("stale writer: got %v", err)
	}
	if got := c.hop("rt-a", "0.0.0.0/0"); got != azPeer {
		t.Fatalf("stale writer moved the route to %s", got)
	}
	// A newer active whose tag write loses the If-Match race is stale too.
	c.tagConflict = true
	err = drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{Term: 4, Token: 8}) })
	if !errors.Is(err, ErrStale) {
		t.Fatalf("412 on the tag write: got %v", err)
	}
	if len(tr.ifMatch) == 0 || !strings.Contains(tr.ifMatch[0], "rt-") {
		t.Fatalf("tag writes carry no If-Match ETag: %v", tr.ifMatch)
	}
	c.tagConflict = false
	if err := drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{Term: 5, Token: 9}) }); err != nil {
		t.Fatalf("newer token refused: %v", err)
	}
	if got := c.hop("rt-a", "0.0.0.0/0"); got != azLocal {
		t.Fatalf("route → %s, want %s", got, azLocal)
	}
}

func TestAzureWholeTableWrites(t *testing.T) {
	fk := clock.NewFake(epoch)
	c := newAzCloud()
	c.etagConflicts = 1 // the first write loses the ETag race and is made again
	a, tr := newAzureTables(t, azCfg(t.TempDir(), func(z *Azure) {
		z.Destinations, z.CreateMissing = []string{"10.60.0.0/16"}, true
	}), c, fk)
	if err := drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{Term: 2, Token: 4}) }); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	for _, x := range []struct{ table, prefix, want string }{
		{"rt-a", "0.0.0.0/0", azLocal}, {"rt-a", "192.168.0.0/16", azLocal}, {"rt-a", "10.60.0.0/16", azLocal},
		{"rt-a", "10.50.0.0/16", "10.1.0.9"}, {"rt-b", "0.0.0.0/0", azLocal}, {"rt-b", "10.60.0.0/16", azLocal},
	} {
		if got := c.hop(x.table, x.prefix); got != x.want {
			t.Errorf("%s %s → %s, want %s", x.table, x.prefix, got, x.want)
		}
	}
	if c.puts != 0 || c.tablePuts != 3 {
		t.Errorf("%d route writes and %d table writes, want 0 and 3 (one per table, one retried after 412)", c.puts, c.tablePuts)
	}
	for _, n := range []string{"rt-a", "rt-b"} {
		if v := c.tables[n].Tags[AzureFenceTag]; v == nil || *v != "4" {
			t.Errorf("%s: fencing tag %v, want 4 recorded in the table write", n, v)
		}
	}
	if len(tr.ifMatch) < 3 {
		t.Errorf("table writes sent If-Match %d times, want every one", len(tr.ifMatch))
	}
	// A table written under a higher token refuses the write: a fault.
	*c.tables["rt-b"].Tags[AzureFenceTag] = "9"
	err := drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{Term: 3, Token: 5}) })
	if !errors.Is(err, ErrStale) || !errors.Is(err, action.ErrFault) {
		t.Fatalf("stale table write: got %v, want a fault wrapping ErrStale", err)
	}
}
