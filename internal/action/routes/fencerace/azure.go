package fencerace

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/provider/azure"
	"github.com/batonha/baton/internal/retry"
)

// Azure is a Cloud over the route tables (ARM resource IDs) that clients
// built by newClients reach, each holding a VirtualAppliance route for
// every destination of dests, between the stale node's next-hop IP and the
// newer node's. newClients gets the transport every request must go
// through. The writers' state directories go under dir.
func Azure(newClients func(policy.Transporter) (*azure.Clients, error), base policy.Transporter, subscription string, tables, dests []string, staleIP, newerIP, dir string) Cloud {
	n := 0
	return Cloud{
		Name: "azure",
		Reset: func(ctx context.Context, staleToken uint64) error {
			cl, err := newClients(base)
			if err != nil {
				return err
			}
			for _, tb := range tables {
				id, err := azure.ParseID(tb, "Microsoft.Network/routeTables")
				if err != nil {
					return err
				}
				resp, err := cl.RouteTables.Get(ctx, id.ResourceGroup, id.Name, nil)
				if err != nil {
					return err
				}
				rt := resp.RouteTable
				for _, r := range rt.Properties.Routes {
					r.Properties.NextHopType = to.Ptr(armnetwork.RouteNextHopTypeVirtualAppliance)
					r.Properties.NextHopIPAddress = to.Ptr(staleIP)
				}
				if rt.Tags == nil {
					rt.Tags = map[string]*string{}
				}
				rt.Tags[routes.AzureFenceTag] = to.Ptr(strconv.FormatUint(staleToken, 10))
				p, err := cl.RouteTables.BeginCreateOrUpdate(ctx, id.ResourceGroup, id.Name, rt, nil)
				if err != nil {
					return err
				}
				if _, err := p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: cl.PollFrequency}); err != nil {
					return err
				}
			}
			return nil
		},
		Writer: func(node string, g *Gate) (action.Action, error) {
			n++
			local, peer := staleIP, newerIP
			if node == "newer" {
				local, peer = newerIP, staleIP
			}
			cfg := routes.Config{Cloud: "azure", StateDir: filepath.Join(dir, node+strconv.Itoa(n)), Attempts: 2, Azure: &routes.Azure{
				SubscriptionID: subscription, TableIDs: tables, Destinations: dests, LocalIP: local, PeerIP: peer,
			}}
			if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
				return nil, err
			}
			if errs := cfg.Validate(); len(errs) > 0 {
				return nil, fmt.Errorf("configuring the %s writer: %w", node, errs[0])
			}
			cl, err := newClients(gatedTransport{next: base, g: g})
			if err != nil {
				return nil, err
			}
			return routes.NewAzure(cfg, cl, routes.Options{Backoff: retry.Backoff{Base: -1}})
		},
		Check: func(ctx context.Context, newerToken uint64) error {
			cl, err := newClients(base)
			if err != nil {
				return err
			}
			for _, tb := range tables {
				id, err := azure.ParseID(tb, "Microsoft.Network/routeTables")
				if err != nil {
					return err
				}
				resp, err := cl.RouteTables.Get(ctx, id.ResourceGroup, id.Name, nil)
				if err != nil {
					return err
				}
				if v := resp.Tags[routes.AzureFenceTag]; v == nil || *v != strconv.FormatUint(newerToken, 10) {
					return fmt.Errorf("route table %s records fencing token %v, want the newer node's %d", tb, v, newerToken)
				}
				for _, r := range resp.Properties.Routes {
					if hop := r.Properties.NextHopIPAddress; hop == nil || *hop != newerIP {
						return fmt.Errorf("route %s in %s points at %v, want the newer node's %s", *r.Properties.AddressPrefix, tb, hop, newerIP)
					}
				}
			}
			return nil
		},
	}
}

// gatedTransport passes the gate before every request.
type gatedTransport struct {
	next policy.Transporter
	g    *Gate
}

func (t gatedTransport) Do(req *http.Request) (*http.Response, error) {
	if err := t.g.Wait(req.Context()); err != nil {
		return nil, err
	}
	return t.next.Do(req)
}
