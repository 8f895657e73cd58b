package peerings

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6/fake"

	"github.com/batonha/baton/internal/clock"
)

// azHub is an in-memory Azure Route Server behind armnetwork's fake
// transport: connections take `settle` reads to leave Updating/Deleting,
// and writes can be made to fail with 409 or 429.
type azHub struct {
	mu       sync.Mutex
	conns    map[string]*armnetwork.BgpConnection
	pending  map[string]int // reads left before a change settles
	deleting map[string]bool
	nics     []string // scale-set instance IPs
	settle   int
	failures []int // HTTP codes for the next writes
	writes   []string
}

func newAzHub() *azHub {
	return &azHub{conns: map[string]*armnetwork.BgpConnection{}, pending: map[string]int{}, deleting: map[string]bool{}, settle: 2}
}

func (h *azHub) addConn(name, ip string, state armnetwork.ProvisioningState, connected bool) {
	cs := armnetwork.HubBgpConnectionStatusNotConnected
	if connected {
		cs = armnetwork.HubBgpConnectionStatusConnected
	}
	h.conns[name] = &armnetwork.BgpConnection{Name: to.Ptr(name), Properties: &armnetwork.BgpConnectionProperties{
		PeerIP: to.Ptr(ip), PeerAsn: to.Ptr(int64(65001)), ProvisioningState: to.Ptr(state), ConnectionState: to.Ptr(cs)}}
}

// tick advances pending operations on every read.
func (h *azHub) tick(name string) {
	if n, ok := h.pending[name]; ok {
		if n > 1 {
			h.pending[name] = n - 1
			return
		}
		delete(h.pending, name)
		if h.deleting[name] {
			delete(h.conns, name)
			delete(h.deleting, name)
			return
		}
		if c := h.conns[name]; c != nil {
			c.Properties.ProvisioningState = to.Ptr(armnetwork.ProvisioningStateSucceeded)
		}
	}
}

func (h *azHub) write(what string) (int, bool) {
	h.writes = append(h.writes, what)
	if len(h.pending) > 0 {
		return http.StatusConflict, false
	}
	if len(h.failures) > 0 {
		code := h.failures[0]
		h.failures = h.failures[1:]
		return code, false
	}
	return 0, true
}

func (h *azHub) factory() *fake.ServerFactory {
	return &fake.ServerFactory{
		VirtualHubBgpConnectionServer: fake.VirtualHubBgpConnectionServer{
			BeginCreateOrUpdate: func(ctx context.Context, rg, hub, name string, p armnetwork.BgpConnection, _ *armnetwork.VirtualHubBgpConnectionClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.VirtualHubBgpConnectionClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				h.mu.Lock()
				defer h.mu.Unlock()
				if code, ok := h.write("create " + name); !ok {
					ec := "AnotherOperationInProgress"
					if code == http.StatusTooManyRequests {
						ec = "TooManyRequests"
					}
					errResp.SetResponseError(code, ec)
					return
				}
				if len(h.conns) >= 8 {
					errResp.SetResponseError(http.StatusBadRequest, "VirtualHubBgpConnectionLimitReached")
					return
				}
				h.addConn(name, *p.Properties.PeerIP, armnetwork.ProvisioningStateUpdating, false)
				h.pending[name] = h.settle
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
				resp.SetTerminalResponse(http.StatusOK, armnetwork.VirtualHubBgpConnectionClientCreateOrUpdateResponse{BgpConnection: *h.conns[name]}, nil)
				return
			},
			BeginDelete: func(ctx context.Context, rg, hub, name string, _ *armnetwork.VirtualHubBgpConnectionClientBeginDeleteOptions) (resp azfake.PollerResponder[armnetwork.VirtualHubBgpConnectionClientDeleteResponse], errResp azfake.ErrorResponder) {
				h.mu.Lock()
				defer h.mu.Unlock()
				if code, ok := h.write("delete " + name); !ok {
					errResp.SetResponseError(code, "AnotherOperationInProgress")
					return
				}
				c, ok := h.conns[name]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "NotFound")
					return
				}
				c.Properties.ProvisioningState = to.Ptr(armnetwork.ProvisioningStateDeleting)
				h.deleting[name] = true
				h.pending[name] = h.settle
				resp.SetTerminalResponse(http.StatusOK, armnetwork.VirtualHubBgpConnectionClientDeleteResponse{}, nil)
				return
			},
			Get: func(ctx context.Context, rg, hub, name string, _ *armnetwork.VirtualHubBgpConnectionClientGetOptions) (resp azfake.Responder[armnetwork.VirtualHubBgpConnectionClientGetResponse], errResp azfake.ErrorResponder) {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.tick(name)
				c, ok := h.conns[name]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "NotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armnetwork.VirtualHubBgpConnectionClientGetResponse{BgpConnection: *c}, nil)
				return
			},
		},
		VirtualHubBgpConnectionsServer: fake.VirtualHubBgpConnectionsServer{
			NewListPager: func(rg, hub string, _ *armnetwork.VirtualHubBgpConnectionsClientListOptions) (resp azfake.PagerResponder[armnetwork.VirtualHubBgpConnectionsClientListResponse]) {
				h.mu.Lock()
				defer h.mu.Unlock()
				var names []string
				for n := range h.conns {
					names = append(names, n)
				}
				sort.Strings(names)
				var all []*armnetwork.BgpConnection
				for _, n := range names {
					c := *h.conns[n]
					pr := *c.Properties
					c.Properties = &pr
					all = append(all, &c)
				}
				// Two pages when there is more than one, to exercise paging.
				half := len(all) / 2
				resp.AddPage(http.StatusOK, armnetwork.VirtualHubBgpConnectionsClientListResponse{ListVirtualHubBgpConnectionResults: armnetwork.ListVirtualHubBgpConnectionResults{Value: all[:half]}}, nil)
				resp.AddPage(http.StatusOK, armnetwork.VirtualHubBgpConnectionsClientListResponse{ListVirtualHubBgpConnectionResults: armnetwork.ListVirtualHubBgpConnectionResults{Value: all[half:]}}, nil)
				return
			},
		},
		VirtualHubsServer: fake.VirtualHubsServer{
			Get: func(ctx context.Context, rg, hub string, _ *armnetwork.VirtualHubsClientGetOptions) (resp azfake.Responder[armnetwork.VirtualHubsClientGetResponse], errResp azfake.ErrorResponder) {
				resp.SetResponse(http.StatusOK, armnetwork.VirtualHubsClientGetResponse{VirtualHub: armnetwork.VirtualHub{
					Name: to.Ptr(hub), Properties: &armnetwork.VirtualHubProperties{
						VirtualRouterIPs: []*string{to.Ptr("10.1.1.4"), to.Ptr("10.1.1.5")}, VirtualRouterAsn: to.Ptr(int64(65515))}}}, nil)
				return
			},
		},
		InterfacesServer: fake.InterfacesServer{
			NewListVirtualMachineScaleSetNetworkInterfacesPager: func(rg, vmss string, _ *armnetwork.InterfacesClientListVirtualMachineScaleSetNetworkInterfacesOptions) (resp azfake.PagerResponder[armnetwork.InterfacesClientListVirtualMachineScaleSetNetworkInterfacesResponse]) {
				h.mu.Lock()
				defer h.mu.Unlock()
				var nics []*armnetwork.Interface
				for i, ip := range h.nics {
					nics = append(nics, &armnetwork.Interface{Name: to.Ptr(fmt.Sprintf("nic%d", i)), Properties: &armnetwork.InterfacePropertiesFormat{
						Primary:           to.Ptr(true),
						ProvisioningState: to.Ptr(armnetwork.ProvisioningStateSucceeded),
						VirtualMachine:    &armnetwork.SubResource{ID: to.Ptr(fmt.Sprintf("/subscriptions/s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s/virtualMachines/%d", rg, vmss, i))},
						IPConfigurations: []*armnetwork.InterfaceIPConfiguration{{Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
							Primary: to.Ptr(true), PrivateIPAddress: to.Ptr(ip)}}},
					}})
				}
				resp.AddPage(http.StatusOK, armnetwork.InterfacesClientListVirtualMachineScaleSetNetworkInterfacesResponse{InterfaceListResult: armnetwork.InterfaceListResult{Value: nics}}, nil)
				return
			},
		},
	}
}

func (h *azHub) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for n := range h.conns {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// newAzureRec returns a reconciler over h whose waits advance a fake
// clock by themselves (a driver goroutine advances it while timers are
// armed), so backoff is exercised without real sleeping.
func newAzureRec(t *testing.T, h *azHub, dry bool) (*Reconciler, *clock.Fake) {
	t.Helper()
	cl, err := NewAzureClients("sub", &azfake.TokenCredential{}, fake.NewServerFactoryTransport(h.factory()))
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	c.SetDefaults()
	c.Provider = ProviderAzure
	c.Azure = Azure{SubscriptionID: "sub", ResourceGroup: "rg", RouteServer: "rs", ScaleSet: "nva", MaxPeers: 8}
	inv, servers, err := AzureBackends(cl, c)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Unix(0, 0))
	rec := New(inv, servers, Options{NamePrefix: c.NamePrefix, PeerASN: 65001, OperationTimeout: 2 * time.Minute,
		DrainTimeout: 30 * time.Second, DryRun: dry, Clock: clk})
	return rec, clk
}

// runRound runs one round while advancing the fake clock whenever the
// reconciler waits.
func runRound(t *testing.T, rec *Reconciler, clk *clock.Fake) ([]Plan, error) {
	t.Helper()
	type result struct {
		plans []Plan
		err   error
	}
	var r result
	err := clk.Drive(time.Second, 10*time.Second, func() error {
		r.plans, r.err = rec.Round(context.Background())
		return nil
	})
	if errors.Is(err, clock.ErrNotDone) {
		t.Fatal("round did not finish")
	}
	return r.plans, r.err
}

func TestAzureConvergesOneAtATime(t *testing.T) {
	h := newAzHub()
	h.nics = []string{"10.1.2.5", "10.1.2.6", "10.1.2.7"}
	h.addConn("manual-fw", "10.1.9.9", armnetwork.ProvisioningStateSucceeded, true) // not baton's
	h.addConn("baton-10-1-2-9", "10.1.2.9", armnetwork.ProvisioningStateSucceeded, false)
	h.failures = []int{http.StatusTooManyRequests, http.StatusConflict}
	rec, clk := newAzureRec(t, h, false)

	plans, err := runRound(t, rec, clk)
	if err != nil {
		t.Fatalf("round: %v (plans %+v)", err, plans)
	}
	want := []string{"baton-10-1-2-5", "baton-10-1-2-6", "baton-10-1-2-7", "manual-fw"}
	if got := h.names(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("connections = %v, want %v", got, want)
	}
	p := plans[0]
	if len(p.Delete) != 1 || p.Delete[0].Name != "baton-10-1-2-9" || len(p.Create) != 3 || len(p.Done) != 4 {
		t.Fatalf("plan = %+v", p)
	}
	// The first write was throttled and the second refused with 409: both
	// retried, and every later write waited for the one before.
	if h.writes[0] != "delete baton-10-1-2-9" || h.writes[1] != "delete baton-10-1-2-9" || h.writes[2] != "delete baton-10-1-2-9" {
		t.Fatalf("writes = %v", h.writes)
	}
	if len(h.writes) != 6 {
		t.Fatalf("writes = %v (a 409 from an overlapping write?)", h.writes)
	}

	// Idempotent: a second round changes nothing.
	h.writes = nil
	plans, err = runRound(t, rec, clk)
	if err != nil || len(h.writes) != 0 || len(plans[0].Create)+len(plans[0].Delete) != 0 {
		t.Fatalf("second round: err=%v writes=%v plan=%+v", err, h.writes, plans[0])
	}
}

func TestAzureSkipsWhileUpdating(t *testing.T) {
	h := newAzHub()
	h.nics = []string{"10.1.2.5"}
	h.addConn("manual", "10.1.9.9", armnetwork.ProvisioningStateUpdating, false)
	rec, clk := newAzureRec(t, h, false)
	plans, err := runRound(t, rec, clk)
	if err != nil {
		t.Fatal(err)
	}
	if plans[0].Skipped == "" || len(h.writes) != 0 {
		t.Fatalf("plan = %+v, writes = %v", plans[0], h.writes)
	}
}

func TestAzurePeerLimitAndDryRun(t *testing.T) {
	h := newAzHub()
	for i := range 10 {
		h.nics = append(h.nics, fmt.Sprintf("10.1.2.%d", 10+i))
	}
	h.addConn("manual", "10.1.9.9", armnetwork.ProvisioningStateSucceeded, true)
	rec, clk := newAzureRec(t, h, true)
	plans, err := runRound(t, rec, clk)
	if err != nil {
		t.Fatal(err)
	}
	p := plans[0]
	if len(p.Create) != 7 || len(p.Unfit) != 3 || len(h.writes) != 0 {
		t.Fatalf("dry run: create %d unfit %d writes %v", len(p.Create), len(p.Unfit), h.writes)
	}
	if p.Unfit[0].IP != "10.1.2.17" || p.Unfit[2].IP != "10.1.2.19" {
		t.Fatalf("unfit = %+v (want the highest IPs, in order)", p.Unfit)
	}

	rec, clk = newAzureRec(t, h, false)
	if _, err := runRound(t, rec, clk); err != nil {
		t.Fatal(err)
	}
	if got := len(h.names()); got != 8 {
		t.Fatalf("%d connections after the real run, want 8", got)
	}
}

func TestAzureDrainWaitsForWithdrawal(t *testing.T) {
	h := newAzHub()
	h.nics = []string{"10.1.2.5"}
	h.addConn("baton-10-1-2-5", "10.1.2.5", armnetwork.ProvisioningStateSucceeded, true)
	h.addConn("baton-10-1-2-6", "10.1.2.6", armnetwork.ProvisioningStateSucceeded, true) // leaving, session still up
	rec, clk := newAzureRec(t, h, false)
	plans, err := runRound(t, rec, clk)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans[0].Draining) != 1 || len(h.writes) != 0 {
		t.Fatalf("plan = %+v writes = %v", plans[0], h.writes)
	}
	// The node withdrew and closed its session: deleted on the next round.
	h.mu.Lock()
	h.conns["baton-10-1-2-6"].Properties.ConnectionState = to.Ptr(armnetwork.HubBgpConnectionStatusNotConnected)
	h.mu.Unlock()
	if _, err := runRound(t, rec, clk); err != nil {
		t.Fatal(err)
	}
	if got := h.names(); len(got) != 1 || got[0] != "baton-10-1-2-5" {
		t.Fatalf("connections = %v", got)
	}
}

func TestAzureDrainTimeout(t *testing.T) {
	h := newAzHub()
	h.addConn("baton-10-1-2-6", "10.1.2.6", armnetwork.ProvisioningStateSucceeded, true)
	rec, clk := newAzureRec(t, h, false)
	if _, err := runRound(t, rec, clk); err != nil {
		t.Fatal(err)
	}
	if len(h.names()) != 1 {
		t.Fatal("deleted before the drain timeout")
	}
	clk.Advance(31 * time.Second)
	if _, err := runRound(t, rec, clk); err != nil {
		t.Fatal(err)
	}
	if len(h.names()) != 0 {
		t.Fatalf("still there after the drain timeout: %v", h.names())
	}
}

func TestAzureFailedCreateReported(t *testing.T) {
	h := newAzHub()
	h.nics = []string{"10.1.2.5"}
	h.failures = []int{http.StatusBadRequest}
	rec, clk := newAzureRec(t, h, false)
	_, err := runRound(t, rec, clk)
	if err == nil {
		t.Fatal("a 400 was not reported")
	}
}

func TestAzureInfo(t *testing.T) {
	h := newAzHub()
	cl, err := NewAzureClients("sub", &azfake.TokenCredential{}, fake.NewServerFactoryTransport(h.factory()))
	if err != nil {
		t.Fatal(err)
	}
	ips, asn, err := NewAzureRouteServer(cl, "rg", "rs", "baton-", 8).Info(context.Background())
	if err != nil || asn != 65515 || len(ips) != 2 {
		t.Fatalf("Info = %v %d %v", ips, asn, err)
	}
}
