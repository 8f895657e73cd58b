package routes

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"

	"github.com/batonha/baton/internal/provider/azure"
)

// NewAzure returns the routes action for Azure over clients (from
// provider/azure.New, possibly with a fake transport). cfg must have passed
// Validate.
func NewAzure(cfg Config, clients *azure.Clients, opts Options) (*Action, error) {
	if cfg.Azure == nil {
		return nil, fmt.Errorf("creating Azure routes action: routes.azure is not set")
	}
	opts = withConfig(cfg, opts)
	return NewWithBackend(&azureBackend{cl: clients, c: *cfg.Azure}, Selection{
		Destinations: cfg.Azure.Destinations, PeerTargets: cfg.Azure.PeerTargets, CreateMissing: cfg.Azure.CreateMissing,
	}, opts)
}

func newAzureClients(cfg Config) (*azure.Clients, error) {
	return azure.New(azure.Options{SubscriptionID: cfg.Azure.SubscriptionID, Endpoint: cfg.Azure.Endpoint})
}

type azureBackend struct {
	cl *azure.Clients
	c  Azure
}

func (b *azureBackend) Cloud() string { return "azure" }

func (b *azureBackend) Classify(err error) (bool, time.Duration) { return azure.Classify(err) }

func azErr(err error, perm, what string) error {
	switch {
	case err == nil:
		return nil
	case azure.IsDenied(err):
		return fmt.Errorf("%s: missing permission %s: %w", what, perm, err)
	case azure.IsNotFound(err):
		return fmt.Errorf("%s: does not exist: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func tagsMatch(want map[string]string, have map[string]*string) bool {
	for k, v := range want {
		h, ok := have[k]
		if !ok || h == nil || *h != v {
			return false
		}
	}
	return true
}

func (b *azureBackend) Tables(ctx context.Context) ([]string, error) {
	if len(b.c.TableIDs) > 0 {
		return b.c.TableIDs, nil
	}
	var ids []string
	collect := func(list []*armnetwork.RouteTable) {
		for _, rt := range list {
			if rt != nil && rt.ID != nil && tagsMatch(b.c.Tags, rt.Tags) {
				ids = append(ids, *rt.ID)
			}
		}
	}
	const perm = "Microsoft.Network/routeTables/read"
	if b.c.ResourceGroup != "" {
		pg := b.cl.RouteTables.NewListPager(b.c.ResourceGroup, nil)
		for pg.More() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return nil, azErr(err, perm, "listing route tables of resource group "+b.c.ResourceGroup)
			}
			collect(page.Value)
		}
	} else {
		pg := b.cl.RouteTables.NewListAllPager(nil)
		for pg.More() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return nil, azErr(err, perm, "listing route tables of subscription "+b.c.SubscriptionID)
			}
			collect(page.Value)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no route table matches routes.azure.tags %v", b.c.Tags)
	}
	slices.Sort(ids)
	return ids, nil
}

func (b *azureBackend) Routes(ctx context.Context, table string) ([]Route, error) {
	id, err := azure.ParseID(table, "Microsoft.Network/routeTables")
	if err != nil {
		return nil, err
	}
	resp, err := b.cl.RouteTables.Get(ctx, id.ResourceGroup, id.Name, nil)
	if err != nil {
		return nil, azErr(err, "Microsoft.Network/routeTables/read", "GET")
	}
	var rs []Route
	if resp.Properties == nil {
		return nil, nil
	}
	for _, r := range resp.Properties.Routes {
		if r == nil || r.Properties == nil || r.Properties.AddressPrefix == nil {
			continue
		}
		rt := Route{Table: table, Name: deref(r.Name), Destination: *r.Properties.AddressPrefix}
		if r.Properties.NextHopType != nil && *r.Properties.NextHopType == armnetwork.RouteNextHopTypeVirtualAppliance {
			rt.Target = deref(r.Properties.NextHopIPAddress)
		} else if r.Properties.NextHopType != nil {
			rt.Target = string(*r.Properties.NextHopType)
		}
		rs = append(rs, rt)
	}
	return rs, nil
}

// routeName is the name given to a route baton creates.
func routeName(dst string) string {
	return "baton-" + strings.NewReplacer(".", "-", ":", "-", "/", "_").Replace(dst)
}

func (b *azureBackend) Point(ctx context.Context, r Route, exists bool) error {
	id, err := azure.ParseID(r.Table, "Microsoft.Network/routeTables")
	if err != nil {
		return err
	}
	if _, err := netip.ParsePrefix(r.Destination); err != nil {
		return fmt.Errorf("route %s in %s: destination is not a prefix: %w", r.Destination, r.Table, err)
	}
	name := r.Name
	if name == "" {
		name = routeName(r.Destination)
	}
	params := armnetwork.Route{Properties: &armnetwork.RoutePropertiesFormat{
		AddressPrefix:    to.Ptr(r.Destination),
		NextHopType:      to.Ptr(armnetwork.RouteNextHopTypeVirtualAppliance),
		NextHopIPAddress: to.Ptr(b.c.LocalIP),
	}}
	what := fmt.Sprintf("pointing route %s (%s) in %s at %s", name, r.Destination, r.Table, b.c.LocalIP)
	poller, err := b.cl.Routes.BeginCreateOrUpdate(ctx, id.ResourceGroup, id.Name, name, params, nil)
	if err != nil {
		return azErr(err, "Microsoft.Network/routeTables/routes/write", what)
	}
	if _, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: b.cl.PollFrequency}); err != nil {
		return azErr(err, "Microsoft.Network/routeTables/routes/write", what+": waiting for the operation")
	}
	return nil
}

// PointTable implements TableWriter: the table is read with its ETag,
// every route of rs is pointed here (created when missing) and the fencing
// token recorded, and the whole table is written back with If-Match, one
// long-running operation. A write that loses the ETag race to another
// writer is read and made again; a table written under a higher token
// fails with ErrStale.
func (b *azureBackend) PointTable(ctx context.Context, table string, rs []Route, token uint64) error {
	for _, r := range rs {
		if _, err := netip.ParsePrefix(r.Destination); err != nil {
			return fmt.Errorf("route %s in %s: destination is not a prefix: %w", r.Destination, table, err)
		}
	}
	const perm = "Microsoft.Network/routeTables/write"
	for attempt := 0; ; attempt++ {
		id, resp, err := b.getTable(ctx, table)
		if err != nil {
			return err
		}
		if have, ok := azureToken(resp.Tags); ok && token > 0 && have > token {
			return staleErr("route table "+table, have, token)
		}
		rt := resp.RouteTable
		b.pointAll(&rt, rs, token)
		what := fmt.Sprintf("pointing %d routes at %s", len(rs), b.c.LocalIP)
		wctx := ctx
		if rt.Etag != nil {
			wctx = policy.WithHTTPHeader(ctx, http.Header{"If-Match": []string{*rt.Etag}})
		}
		poller, err := b.cl.RouteTables.BeginCreateOrUpdate(wctx, id.ResourceGroup, id.Name, rt, nil)
		if err == nil {
			if _, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: b.cl.PollFrequency}); err != nil {
				return azErr(err, perm, what+": waiting for the operation")
			}
			return nil
		}
		if azure.Status(err) != http.StatusPreconditionFailed || attempt == 2 {
			return azErr(err, perm, what)
		}
	}
}

// pointAll points the routes of rs in rt here, appending those missing,
// and records token (when > 0) in rt's tags.
func (b *azureBackend) pointAll(rt *armnetwork.RouteTable, rs []Route, token uint64) {
	if rt.Properties == nil {
		rt.Properties = &armnetwork.RouteTablePropertiesFormat{}
	}
	byPrefix := map[string]*armnetwork.Route{}
	for _, r := range rt.Properties.Routes {
		if r != nil && r.Properties != nil && r.Properties.AddressPrefix != nil {
			byPrefix[canonical(*r.Properties.AddressPrefix)] = r
		}
	}
	for _, want := range rs {
		r := byPrefix[canonical(want.Destination)]
		if r == nil {
			name := want.Name
			if name == "" {
				name = routeName(want.Destination)
			}
			r = &armnetwork.Route{Name: to.Ptr(name), Properties: &armnetwork.RoutePropertiesFormat{AddressPrefix: to.Ptr(want.Destination)}}
			rt.Properties.Routes = append(rt.Properties.Routes, r)
			byPrefix[canonical(want.Destination)] = r
		}
		r.Properties.NextHopType = to.Ptr(armnetwork.RouteNextHopTypeVirtualAppliance)
		r.Properties.NextHopIPAddress = to.Ptr(b.c.LocalIP)
	}
	if token > 0 {
		if rt.Tags == nil {
			rt.Tags = map[string]*string{}
		}
		rt.Tags[AzureFenceTag] = to.Ptr(strconv.FormatUint(token, 10))
	}
}

func (b *azureBackend) Owner(r Route) Owner {
	switch {
	case b.c.LocalIP != "" && r.Target == b.c.LocalIP:
		return OwnerLocal
	case b.c.PeerIP != "" && r.Target == b.c.PeerIP:
		return OwnerPeer
	}
	return OwnerOther
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
