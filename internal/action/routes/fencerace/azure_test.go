package fencerace

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6/fake"

	"github.com/batonha/baton/internal/provider/azure"
)

const sub = "00000000-0000-0000-0000-000000000001"

// armTables is the state behind the SDK's fake servers: route tables whose
// ETag changes on every write, with If-Match enforced (ifMatch).
type armTables struct {
	mu     sync.Mutex
	tables map[string]*armnetwork.RouteTable
	seq    int
}

func (s *armTables) bump(rt *armnetwork.RouteTable) {
	s.seq++
	rt.Etag = to.Ptr(fmt.Sprintf(`W/"%d"`, s.seq))
}

// snapshot deep-copies a table (the fakes hand out what they return).
func snapshot(rt *armnetwork.RouteTable) armnetwork.RouteTable {
	c := *rt
	c.Tags = map[string]*string{}
	for k, v := range rt.Tags {
		c.Tags[k] = to.Ptr(*v)
	}
	p := *rt.Properties
	p.Routes = nil
	for _, r := range rt.Properties.Routes {
		rc, pc := *r, *r.Properties
		rc.Properties = &pc
		p.Routes = append(p.Routes, &rc)
	}
	c.Properties = &p
	return c
}

func (s *armTables) factory() *fake.ServerFactory {
	return &fake.ServerFactory{
		RouteTablesServer: fake.RouteTablesServer{
			Get: func(_ context.Context, _, name string, _ *armnetwork.RouteTablesClientGetOptions) (resp azfake.Responder[armnetwork.RouteTablesClientGetResponse], errResp azfake.ErrorResponder) {
				s.mu.Lock()
				defer s.mu.Unlock()
				rt, ok := s.tables[name]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armnetwork.RouteTablesClientGetResponse{RouteTable: snapshot(rt)}, nil)
				return
			},
			UpdateTags: func(_ context.Context, _, name string, params armnetwork.TagsObject, _ *armnetwork.RouteTablesClientUpdateTagsOptions) (resp azfake.Responder[armnetwork.RouteTablesClientUpdateTagsResponse], errResp azfake.ErrorResponder) {
				s.mu.Lock()
				defer s.mu.Unlock()
				rt := s.tables[name]
				rt.Tags = params.Tags
				s.bump(rt)
				resp.SetResponse(http.StatusOK, armnetwork.RouteTablesClientUpdateTagsResponse{RouteTable: snapshot(rt)}, nil)
				return
			},
			BeginCreateOrUpdate: func(_ context.Context, _, name string, params armnetwork.RouteTable, _ *armnetwork.RouteTablesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.RouteTablesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				s.mu.Lock()
				defer s.mu.Unlock()
				rt := s.tables[name]
				rt.Tags, rt.Properties = params.Tags, params.Properties
				s.bump(rt)
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
				resp.SetTerminalResponse(http.StatusOK, armnetwork.RouteTablesClientCreateOrUpdateResponse{RouteTable: snapshot(rt)}, nil)
				return
			},
		},
		RoutesServer: fake.RoutesServer{
			BeginCreateOrUpdate: func(_ context.Context, _, table, name string, params armnetwork.Route, _ *armnetwork.RoutesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.RoutesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				s.mu.Lock()
				defer s.mu.Unlock()
				rt := s.tables[table]
				nr := &armnetwork.Route{Name: to.Ptr(name), Properties: params.Properties}
				i := 0
				for ; i < len(rt.Properties.Routes) && *rt.Properties.Routes[i].Name != name; i++ {
				}
				if i < len(rt.Properties.Routes) {
					rt.Properties.Routes[i] = nr
				} else {
					rt.Properties.Routes = append(rt.Properties.Routes, nr)
				}
				s.bump(rt)
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
				resp.SetTerminalResponse(http.StatusOK, armnetwork.RoutesClientCreateOrUpdateResponse{Route: *nr}, nil)
				return
			},
		},
	}
}

// ifMatch answers 412 to a write whose If-Match is not the table's ETag,
// as ARM does (the SDK's fake servers do not see headers).
type ifMatch struct {
	s    *armTables
	next policy.Transporter
}

func (t ifMatch) Do(req *http.Request) (*http.Response, error) {
	if v := req.Header.Get("If-Match"); v != "" && req.Method != http.MethodGet {
		name := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
		t.s.mu.Lock()
		rt := t.s.tables[name]
		stale := rt == nil || rt.Etag == nil || *rt.Etag != v
		t.s.mu.Unlock()
		if stale {
			return &http.Response{StatusCode: http.StatusPreconditionFailed, Request: req,
				Header: http.Header{"Content-Type": {"application/json"}, "X-Ms-Error-Code": {"PreconditionFailed"}},
				Body:   io.NopCloser(strings.NewReader(`{"error":{"code":"PreconditionFailed","message":"The ETag does not match."}}`))}, nil
		}
	}
	return t.next.Do(req)
}

// TestAzureNewerTokenWinsEveryInterleaving races the two writers through
// the real armnetwork clients over the SDK's fake servers.
func TestAzureNewerTokenWinsEveryInterleaving(t *testing.T) {
	s := &armTables{tables: map[string]*armnetwork.RouteTable{}}
	dests := []string{"0.0.0.0/0", "172.16.0.0/12"}
	var ids []string
	for i := range 2 {
		name := "rt-" + strconv.Itoa(i)
		id := fmt.Sprintf("/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Network/routeTables/%s", sub, name)
		rt := &armnetwork.RouteTable{ID: to.Ptr(id), Name: to.Ptr(name), Tags: map[string]*string{}, Properties: &armnetwork.RouteTablePropertiesFormat{}}
		for j, d := range dests {
			rt.Properties.Routes = append(rt.Properties.Routes, &armnetwork.Route{Name: to.Ptr("r" + strconv.Itoa(j)), Properties: &armnetwork.RoutePropertiesFormat{
				AddressPrefix: to.Ptr(d), NextHopType: to.Ptr(armnetwork.RouteNextHopTypeVirtualAppliance), NextHopIPAddress: to.Ptr("10.1.0.5"),
			}})
		}
		s.bump(rt)
		s.tables[name] = rt
		ids = append(ids, id)
	}
	base := ifMatch{s: s, next: fake.NewServerFactoryTransport(s.factory())}
	newClients := func(tr policy.Transporter) (*azure.Clients, error) {
		return azure.New(azure.Options{SubscriptionID: sub, Credential: &azfake.TokenCredential{}, Transport: tr, PollFrequency: time.Millisecond})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Sweep(ctx, Azure(newClients, base, sub, ids, dests, "10.1.0.4", "10.1.0.5", t.TempDir()), 5, 6)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refused != rep.Cases || rep.Cases < 10 {
		t.Fatalf("report %+v: want every one of at least 10 interleavings refused", rep)
	}
	t.Logf("%d interleavings, the newer token won each", rep.Cases)
}
