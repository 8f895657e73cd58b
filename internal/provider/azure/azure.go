// Package azure adapts baton to Azure Resource Manager networking: it
// builds armnetwork clients from DefaultAzureCredential (managed identity on
// the VM, environment, workload identity, Azure CLI), declares small
// interfaces with exactly the SDK calls baton makes, and classifies ARM
// errors (429, 409 AnotherOperationInProgress, 5xx) with their Retry-After.
package azure

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
)

// RouteTablesAPI is the part of *armnetwork.RouteTablesClient baton uses.
type RouteTablesAPI interface {
	Get(ctx context.Context, resourceGroupName string, routeTableName string, options *armnetwork.RouteTablesClientGetOptions) (armnetwork.RouteTablesClientGetResponse, error)
	NewListPager(resourceGroupName string, options *armnetwork.RouteTablesClientListOptions) *runtime.Pager[armnetwork.RouteTablesClientListResponse]
	NewListAllPager(options *armnetwork.RouteTablesClientListAllOptions) *runtime.Pager[armnetwork.RouteTablesClientListAllResponse]
	UpdateTags(ctx context.Context, resourceGroupName string, routeTableName string, parameters armnetwork.TagsObject, options *armnetwork.RouteTablesClientUpdateTagsOptions) (armnetwork.RouteTablesClientUpdateTagsResponse, error)
	BeginCreateOrUpdate(ctx context.Context, resourceGroupName string, routeTableName string, parameters armnetwork.RouteTable, options *armnetwork.RouteTablesClientBeginCreateOrUpdateOptions) (*runtime.Poller[armnetwork.RouteTablesClientCreateOrUpdateResponse], error)
}

// RoutesAPI is the part of *armnetwork.RoutesClient baton uses.
type RoutesAPI interface {
	BeginCreateOrUpdate(ctx context.Context, resourceGroupName string, routeTableName string, routeName string, routeParameters armnetwork.Route, options *armnetwork.RoutesClientBeginCreateOrUpdateOptions) (*runtime.Poller[armnetwork.RoutesClientCreateOrUpdateResponse], error)
	Get(ctx context.Context, resourceGroupName string, routeTableName string, routeName string, options *armnetwork.RoutesClientGetOptions) (armnetwork.RoutesClientGetResponse, error)
}

// InterfacesAPI is the part of *armnetwork.InterfacesClient baton uses.
type InterfacesAPI interface {
	Get(ctx context.Context, resourceGroupName string, networkInterfaceName string, options *armnetwork.InterfacesClientGetOptions) (armnetwork.InterfacesClientGetResponse, error)
	BeginCreateOrUpdate(ctx context.Context, resourceGroupName string, networkInterfaceName string, parameters armnetwork.Interface, options *armnetwork.InterfacesClientBeginCreateOrUpdateOptions) (*runtime.Poller[armnetwork.InterfacesClientCreateOrUpdateResponse], error)
	UpdateTags(ctx context.Context, resourceGroupName string, networkInterfaceName string, parameters armnetwork.TagsObject, options *armnetwork.InterfacesClientUpdateTagsOptions) (armnetwork.InterfacesClientUpdateTagsResponse, error)
}

// PublicIPAddressesAPI is the part of *armnetwork.PublicIPAddressesClient
// baton uses.
type PublicIPAddressesAPI interface {
	Get(ctx context.Context, resourceGroupName string, publicIPAddressName string, options *armnetwork.PublicIPAddressesClientGetOptions) (armnetwork.PublicIPAddressesClientGetResponse, error)
}

var (
	_ RouteTablesAPI       = (*armnetwork.RouteTablesClient)(nil)
	_ RoutesAPI            = (*armnetwork.RoutesClient)(nil)
	_ InterfacesAPI        = (*armnetwork.InterfacesClient)(nil)
	_ PublicIPAddressesAPI = (*armnetwork.PublicIPAddressesClient)(nil)
)

// Clients are the ARM clients of one subscription.
type Clients struct {
	RouteTables RouteTablesAPI
	Routes      RoutesAPI
	Interfaces  InterfacesAPI
	PublicIPs   PublicIPAddressesAPI
	// PollFrequency is how often long-running operations are polled when
	// the service sends no Retry-After.
	PollFrequency time.Duration
}

// Options configures New.
type Options struct {
	SubscriptionID string
	// Credential; nil means azidentity.DefaultAzureCredential (managed
	// identity on an Azure VM). Tokens are never logged.
	Credential azcore.TokenCredential
	// Transport replaces the HTTP transport (tests: armnetwork/v6/fake).
	Transport policy.Transporter
	// Endpoint overrides the Resource Manager endpoint (tests: a local
	// HTTP server); it also allows credentials over plain HTTP.
	Endpoint string
	// PollFrequency for long-running operations, default 1s (the SDK's
	// minimum outside tests).
	PollFrequency time.Duration
}

// New builds the clients. The SDK's own retries are switched off: baton
// retries with jittered backoff on its injected clock, honouring
// Retry-After, so that one place owns the retry budget.
func New(o Options) (*Clients, error) {
	if o.SubscriptionID == "" {
		return nil, fmt.Errorf("creating Azure clients: subscription ID is empty")
	}
	cred := o.Credential
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("creating Azure default credential: %w", err)
		}
		cred = c
	}
	opts := &arm.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: -1},
	}}
	if o.Transport != nil {
		opts.Transport = o.Transport
	}
	if o.Endpoint != "" {
		opts.Cloud = cloud.Configuration{
			ActiveDirectoryAuthorityHost: o.Endpoint,
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Audience: o.Endpoint, Endpoint: o.Endpoint},
			},
		}
		opts.InsecureAllowCredentialWithHTTP = true
	}
	f, err := armnetwork.NewClientFactory(o.SubscriptionID, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("creating Azure network clients for subscription %s: %w", o.SubscriptionID, err)
	}
	freq := o.PollFrequency
	if freq <= 0 {
		freq = time.Second
	}
	return &Clients{
		RouteTables:   f.NewRouteTablesClient(),
		Routes:        f.NewRoutesClient(),
		Interfaces:    f.NewInterfacesClient(),
		PublicIPs:     f.NewPublicIPAddressesClient(),
		PollFrequency: freq,
	}, nil
}

// ResourceID is a parsed ARM resource ID of a top-level resource.
type ResourceID struct {
	Subscription  string
	ResourceGroup string
	Name          string
}

// ParseID parses an ARM resource ID and checks its type, given as
// "Microsoft.Network/routeTables".
func ParseID(id, wantType string) (ResourceID, error) {
	r, err := arm.ParseResourceID(id)
	if err != nil {
		return ResourceID{}, fmt.Errorf("parsing resource ID %q: %w", id, err)
	}
	if got := r.ResourceType.String(); !equalFold(got, wantType) {
		return ResourceID{}, fmt.Errorf("resource ID %q is a %s, want %s", id, got, wantType)
	}
	if r.ResourceGroupName == "" || r.SubscriptionID == "" {
		return ResourceID{}, fmt.Errorf("resource ID %q lacks a subscription or resource group", id)
	}
	return ResourceID{Subscription: r.SubscriptionID, ResourceGroup: r.ResourceGroupName, Name: r.Name}, nil
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
