package peerings

import (
	"context"
	"fmt"

	"github.com/batonha/baton/internal/provider/aws"
)

// Backends builds the inventory and route servers a checked Config names,
// with real cloud clients (managed identity / instance role); with
// health.port set the inventory keeps only the instances whose own
// health endpoint answers 200 (Healthy).
func Backends(ctx context.Context, c Config) (Inventory, []RouteServer, error) {
	inv, servers, err := cloudBackends(ctx, c)
	if err != nil || c.Health.Port == 0 {
		return inv, servers, err
	}
	return Healthy(inv, c.Health, nil), servers, nil
}

func cloudBackends(ctx context.Context, c Config) (Inventory, []RouteServer, error) {
	switch c.Provider {
	case ProviderAzure:
		cl, err := NewAzureClients(c.Azure.SubscriptionID, nil, nil)
		if err != nil {
			return nil, nil, err
		}
		return AzureBackends(cl, c)
	case ProviderAWS:
		api, err := aws.New(ctx, aws.Options{Region: c.AWS.Region})
		if err != nil {
			return nil, nil, err
		}
		inv, servers := AWSBackends(api, c)
		return inv, servers, nil
	}
	return nil, nil, fmt.Errorf("peerings: unknown provider %q", c.Provider)
}

// AzureBackends builds the Azure inventory and route server over cl.
func AzureBackends(cl *AzureClients, c Config) (Inventory, []RouteServer, error) {
	vmssRG := c.Azure.ScaleSetResourceGroup
	if vmssRG == "" {
		vmssRG = c.Azure.ResourceGroup
	}
	return NewAzureScaleSet(cl, vmssRG, c.Azure.ScaleSet),
		[]RouteServer{NewAzureRouteServer(cl, c.Azure.ResourceGroup, c.Azure.RouteServer, c.NamePrefix, c.Azure.MaxPeers)}, nil
}

// AWSBackends builds the AWS inventory and one route server per endpoint.
func AWSBackends(api AWSRouteServerAPI, c Config) (Inventory, []RouteServer) {
	var servers []RouteServer
	for _, e := range c.AWS.Endpoints {
		servers = append(servers, NewAWSEndpoint(api, e, c.NamePrefix, c.AWS.Liveness))
	}
	return NewAWSAutoScalingGroup(api, c.AWS.AutoScalingGroup), servers
}
