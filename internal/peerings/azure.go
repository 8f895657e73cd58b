package peerings

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"

	"github.com/batonha/baton/internal/provider/azure"
)

// AzureBgpConnectionAPI is the part of *armnetwork.VirtualHubBgpConnectionClient used.
type AzureBgpConnectionAPI interface {
	BeginCreateOrUpdate(ctx context.Context, resourceGroupName string, virtualHubName string, connectionName string, parameters armnetwork.BgpConnection, options *armnetwork.VirtualHubBgpConnectionClientBeginCreateOrUpdateOptions) (*runtime.Poller[armnetwork.VirtualHubBgpConnectionClientCreateOrUpdateResponse], error)
	BeginDelete(ctx context.Context, resourceGroupName string, virtualHubName string, connectionName string, options *armnetwork.VirtualHubBgpConnectionClientBeginDeleteOptions) (*runtime.Poller[armnetwork.VirtualHubBgpConnectionClientDeleteResponse], error)
	Get(ctx context.Context, resourceGroupName string, virtualHubName string, connectionName string, options *armnetwork.VirtualHubBgpConnectionClientGetOptions) (armnetwork.VirtualHubBgpConnectionClientGetResponse, error)
}

// AzureBgpConnectionsAPI is the part of *armnetwork.VirtualHubBgpConnectionsClient used.
type AzureBgpConnectionsAPI interface {
	NewListPager(resourceGroupName string, virtualHubName string, options *armnetwork.VirtualHubBgpConnectionsClientListOptions) *runtime.Pager[armnetwork.VirtualHubBgpConnectionsClientListResponse]
}

// AzureHubsAPI is the part of *armnetwork.VirtualHubsClient used.
type AzureHubsAPI interface {
	Get(ctx context.Context, resourceGroupName string, virtualHubName string, options *armnetwork.VirtualHubsClientGetOptions) (armnetwork.VirtualHubsClientGetResponse, error)
}

// AzureInterfacesAPI is the part of *armnetwork.InterfacesClient used.
type AzureInterfacesAPI interface {
	NewListVirtualMachineScaleSetNetworkInterfacesPager(resourceGroupName string, virtualMachineScaleSetName string, options *armnetwork.InterfacesClientListVirtualMachineScaleSetNetworkInterfacesOptions) *runtime.Pager[armnetwork.InterfacesClientListVirtualMachineScaleSetNetworkInterfacesResponse]
}

var (
	_ AzureBgpConnectionAPI  = (*armnetwork.VirtualHubBgpConnectionClient)(nil)
	_ AzureBgpConnectionsAPI = (*armnetwork.VirtualHubBgpConnectionsClient)(nil)
	_ AzureHubsAPI           = (*armnetwork.VirtualHubsClient)(nil)
	_ AzureInterfacesAPI     = (*armnetwork.InterfacesClient)(nil)
)

// AzureClients are the ARM clients the Azure backend uses.
type AzureClients struct {
	Connection  AzureBgpConnectionAPI
	Connections AzureBgpConnectionsAPI
	Hubs        AzureHubsAPI
	Interfaces  AzureInterfacesAPI
}

// NewAzureClients builds the clients for subscription. cred nil means
// DefaultAzureCredential (the VM's managed identity); transport nil means
// the real network (tests pass armnetwork/v6/fake's).
func NewAzureClients(subscription string, cred azcore.TokenCredential, transport policy.Transporter) (*AzureClients, error) {
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("creating Azure default credential: %w", err)
		}
		cred = c
	}
	// The SDK's own retries are off: the reconciler retries 409/429 with
	// its own backoff and deadline.
	opts := &arm.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}
	if transport != nil {
		opts.Transport = transport
	}
	f, err := armnetwork.NewClientFactory(subscription, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("creating Azure network clients for subscription %s: %w", subscription, err)
	}
	return &AzureClients{
		Connection: f.NewVirtualHubBgpConnectionClient(), Connections: f.NewVirtualHubBgpConnectionsClient(),
		Hubs: f.NewVirtualHubsClient(), Interfaces: f.NewInterfacesClient(),
	}, nil
}

// AzureRouteServer is Azure Route Server (a virtual hub's BGP connections).
type AzureRouteServer struct {
	c          *AzureClients
	rg, hub    string
	namePrefix string
	maxPeers   int
}

// NewAzureRouteServer returns the backend for route server hub in rg.
func NewAzureRouteServer(c *AzureClients, rg, hub, namePrefix string, maxPeers int) *AzureRouteServer {
	return &AzureRouteServer{c: c, rg: rg, hub: hub, namePrefix: namePrefix, maxPeers: maxPeers}
}

// ID implements RouteServer.
func (a *AzureRouteServer) ID() string { return "azure:" + a.rg + "/" + a.hub }

// MaxPeers implements RouteServer.
func (a *AzureRouteServer) MaxPeers() int { return a.maxPeers }

// Managed implements RouteServer: baton's peerings carry its name prefix.
func (a *AzureRouteServer) Managed(p Peering) bool { return strings.HasPrefix(p.Name, a.namePrefix) }

// Info returns the route server's peer IPs and ASN (what the appliances
// dial), from the virtual hub.
func (a *AzureRouteServer) Info(ctx context.Context) (ips []string, asn int64, err error) {
	r, err := a.c.Hubs.Get(ctx, a.rg, a.hub, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("reading virtual hub %s/%s: %w", a.rg, a.hub, azErr(err))
	}
	if p := r.Properties; p != nil {
		for _, ip := range p.VirtualRouterIPs {
			if ip != nil {
				ips = append(ips, *ip)
			}
		}
		if p.VirtualRouterAsn != nil {
			asn = *p.VirtualRouterAsn
		}
	}
	return ips, asn, nil
}

func fromAzure(c *armnetwork.BgpConnection) Peering {
	p := Peering{Name: deref(c.Name)}
	if pr := c.Properties; pr != nil {
		p.IP = deref(pr.PeerIP)
		if pr.PeerAsn != nil {
			p.ASN = uint32(*pr.PeerAsn)
		}
		if pr.ProvisioningState != nil {
			p.State = string(*pr.ProvisioningState)
		}
		p.SessionUp = pr.ConnectionState != nil && *pr.ConnectionState == armnetwork.HubBgpConnectionStatusConnected
	}
	return p
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// azErr marks ARM's busy (retryable 409, 429, 5xx) answers with ErrBusy
// and not-found with ErrNotFound.
func azErr(err error) error {
	if err == nil {
		return nil
	}
	if azure.IsNotFound(err) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if retry, _ := azure.Classify(err); retry || azure.Status(err) == http.StatusConflict {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

// List implements RouteServer.
func (a *AzureRouteServer) List(ctx context.Context) ([]Peering, error) {
	var out []Peering
	pager := a.c.Connections.NewListPager(a.rg, a.hub, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing BGP connections of %s/%s: %w", a.rg, a.hub, azErr(err))
		}
		for _, c := range page.Value {
			if c != nil {
				out = append(out, fromAzure(c))
			}
		}
	}
	return out, nil
}

// Get implements RouteServer.
func (a *AzureRouteServer) Get(ctx context.Context, name string) (Peering, error) {
	r, err := a.c.Connection.Get(ctx, a.rg, a.hub, name, nil)
	if err != nil {
		return Peering{}, fmt.Errorf("reading BGP connection %s: %w", name, azErr(err))
	}
	return fromAzure(&r.BgpConnection), nil
}

// Create implements RouteServer. The long-running operation is followed
// by the reconciler through Get, not the SDK poller.
func (a *AzureRouteServer) Create(ctx context.Context, p Peering) error {
	_, err := a.c.Connection.BeginCreateOrUpdate(ctx, a.rg, a.hub, p.Name, armnetwork.BgpConnection{
		Name:       to.Ptr(p.Name),
		Properties: &armnetwork.BgpConnectionProperties{PeerIP: to.Ptr(p.IP), PeerAsn: to.Ptr(int64(p.ASN))},
	}, nil)
	if err != nil {
		return fmt.Errorf("creating BGP connection %s to %s: %w", p.Name, p.IP, azErr(err))
	}
	return nil
}

// Delete implements RouteServer.
func (a *AzureRouteServer) Delete(ctx context.Context, p Peering) error {
	if _, err := a.c.Connection.BeginDelete(ctx, a.rg, a.hub, p.Name, nil); err != nil {
		if azure.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("deleting BGP connection %s: %w", p.Name, azErr(err))
	}
	return nil
}

// AzureScaleSet lists a VM scale set's instances from their NICs.
type AzureScaleSet struct {
	c        *AzureClients
	rg, vmss string
}

// NewAzureScaleSet returns the inventory of scale set vmss in rg.
func NewAzureScaleSet(c *AzureClients, rg, vmss string) *AzureScaleSet {
	return &AzureScaleSet{c: c, rg: rg, vmss: vmss}
}

// Instances implements Inventory: the primary private IP of each
// instance's primary NIC, for NICs that are provisioned and attached.
func (s *AzureScaleSet) Instances(ctx context.Context) ([]Instance, error) {
	var out []Instance
	pager := s.c.Interfaces.NewListVirtualMachineScaleSetNetworkInterfacesPager(s.rg, s.vmss, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing NICs of scale set %s/%s: %w", s.rg, s.vmss, err)
		}
		for _, nic := range page.Value {
			if in, ok := nicInstance(nic); ok {
				out = append(out, in)
			}
		}
	}
	return out, nil
}

func nicInstance(nic *armnetwork.Interface) (Instance, bool) {
	if nic == nil || nic.Properties == nil {
		return Instance{}, false
	}
	p := nic.Properties
	if p.Primary != nil && !*p.Primary {
		return Instance{}, false
	}
	if p.ProvisioningState != nil && *p.ProvisioningState != armnetwork.ProvisioningStateSucceeded {
		return Instance{}, false
	}
	name := deref(nic.Name)
	if p.VirtualMachine != nil && p.VirtualMachine.ID != nil {
		id := *p.VirtualMachine.ID
		name = id[strings.LastIndex(id, "/")+1:]
	}
	for _, ipc := range p.IPConfigurations {
		if ipc == nil || ipc.Properties == nil || ipc.Properties.PrivateIPAddress == nil {
			continue
		}
		if ipc.Properties.Primary != nil && !*ipc.Properties.Primary && len(p.IPConfigurations) > 1 {
			continue
		}
		return Instance{Name: name, IP: *ipc.Properties.PrivateIPAddress}, true
	}
	return Instance{}, false
}
