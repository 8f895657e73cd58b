package peerings

import (
	"context"
	"errors"
	"fmt"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/batonha/baton/internal/provider/aws"
)

// AWSRouteServerAPI holds the EC2 calls the AWS backend makes, with the
// SDK's signatures. *ec2.Client implements it.
type AWSRouteServerAPI interface {
	CreateRouteServerPeer(ctx context.Context, in *ec2.CreateRouteServerPeerInput, optFns ...func(*ec2.Options)) (*ec2.CreateRouteServerPeerOutput, error)
	DeleteRouteServerPeer(ctx context.Context, in *ec2.DeleteRouteServerPeerInput, optFns ...func(*ec2.Options)) (*ec2.DeleteRouteServerPeerOutput, error)
	DescribeRouteServerPeers(ctx context.Context, in *ec2.DescribeRouteServerPeersInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRouteServerPeersOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

var _ AWSRouteServerAPI = (*ec2.Client)(nil)

// AWSEndpoint is one VPC Route Server endpoint: each appliance gets one
// peer on it. Peers baton manages carry the tag ManagedTag = name.
type AWSEndpoint struct {
	api        AWSRouteServerAPI
	endpoint   string
	namePrefix string
	liveness   types.RouteServerPeerLivenessMode
}

// NewAWSEndpoint returns the backend for route-server endpoint id.
// liveness is "bfd" or "bgp-keepalive".
func NewAWSEndpoint(api AWSRouteServerAPI, id, namePrefix, liveness string) *AWSEndpoint {
	return &AWSEndpoint{api: api, endpoint: id, namePrefix: namePrefix, liveness: types.RouteServerPeerLivenessMode(liveness)}
}

// ID implements RouteServer.
func (a *AWSEndpoint) ID() string { return "aws:" + a.endpoint }

// MaxPeers implements RouteServer: the quota is per account and region,
// not checked here.
func (a *AWSEndpoint) MaxPeers() int { return 0 }

// Managed implements RouteServer.
func (a *AWSEndpoint) Managed(p Peering) bool { return strings.HasPrefix(p.Name, a.namePrefix) }

func awsErr(err error) error {
	if err == nil {
		return nil
	}
	if aws.IsNotFound(err) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if retry, _ := aws.Classify(err); retry || aws.Code(err) == "IncorrectState" || aws.Code(err) == "ConcurrentModification" {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

// awsState maps a route-server peer state onto the provisioning states.
func awsState(s types.RouteServerPeerState) string {
	switch s {
	case types.RouteServerPeerStateAvailable:
		return StateSucceeded
	case types.RouteServerPeerStatePending:
		return StateCreating
	case types.RouteServerPeerStateDeleting:
		return StateDeleting
	case types.RouteServerPeerStateFailing, types.RouteServerPeerStateFailed:
		return StateFailed
	}
	return string(s)
}

func fromAWS(p types.RouteServerPeer) Peering {
	out := Peering{ID: awssdk.ToString(p.RouteServerPeerId), IP: awssdk.ToString(p.PeerAddress), State: awsState(p.State)}
	for _, t := range p.Tags {
		if awssdk.ToString(t.Key) == ManagedTag {
			out.Name = awssdk.ToString(t.Value)
		}
	}
	if out.Name == "" {
		out.Name = out.ID
	}
	if p.BgpOptions != nil && p.BgpOptions.PeerAsn != nil {
		out.ASN = uint32(*p.BgpOptions.PeerAsn)
	}
	out.SessionUp = p.BgpStatus != nil && p.BgpStatus.Status == types.RouteServerBgpStateUp
	return out
}

func (a *AWSEndpoint) describe(ctx context.Context, in *ec2.DescribeRouteServerPeersInput) ([]Peering, error) {
	var out []Peering
	p := ec2.NewDescribeRouteServerPeersPaginator(a.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, awsErr(err)
		}
		for _, rp := range page.RouteServerPeers {
			if rp.State == types.RouteServerPeerStateDeleted {
				continue
			}
			if awssdk.ToString(rp.RouteServerEndpointId) != a.endpoint {
				continue
			}
			out = append(out, fromAWS(rp))
		}
	}
	return out, nil
}

// List implements RouteServer.
func (a *AWSEndpoint) List(ctx context.Context) ([]Peering, error) {
	out, err := a.describe(ctx, &ec2.DescribeRouteServerPeersInput{Filters: []types.Filter{
		{Name: awssdk.String("route-server-endpoint-id"), Values: []string{a.endpoint}},
	}})
	if err != nil {
		return nil, fmt.Errorf("describing route-server peers of %s: %w", a.endpoint, err)
	}
	return out, nil
}

// Get implements RouteServer.
func (a *AWSEndpoint) Get(ctx context.Context, name string) (Peering, error) {
	out, err := a.describe(ctx, &ec2.DescribeRouteServerPeersInput{Filters: []types.Filter{
		{Name: awssdk.String("route-server-endpoint-id"), Values: []string{a.endpoint}},
		{Name: awssdk.String("tag:" + ManagedTag), Values: []string{name}},
	}})
	if err != nil {
		return Peering{}, fmt.Errorf("describing route-server peer %s on %s: %w", name, a.endpoint, err)
	}
	for _, p := range out {
		if p.Name == name {
			return p, nil
		}
	}
	return Peering{}, fmt.Errorf("route-server peer %s on %s: %w", name, a.endpoint, ErrNotFound)
}

// Create implements RouteServer.
func (a *AWSEndpoint) Create(ctx context.Context, p Peering) error {
	_, err := a.api.CreateRouteServerPeer(ctx, &ec2.CreateRouteServerPeerInput{
		RouteServerEndpointId: awssdk.String(a.endpoint),
		PeerAddress:           awssdk.String(p.IP),
		BgpOptions:            &types.RouteServerBgpOptionsRequest{PeerAsn: awssdk.Int64(int64(p.ASN)), PeerLivenessDetection: a.liveness},
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeRouteServerPeer,
			Tags:         []types.Tag{{Key: awssdk.String(ManagedTag), Value: awssdk.String(p.Name)}},
		}},
	})
	if err != nil {
		return fmt.Errorf("creating route-server peer %s for %s on %s: %w", p.Name, p.IP, a.endpoint, awsErr(err))
	}
	return nil
}

// Delete implements RouteServer.
func (a *AWSEndpoint) Delete(ctx context.Context, p Peering) error {
	if p.ID == "" {
		return errors.New("deleting route-server peer " + p.Name + ": no peer ID")
	}
	_, err := a.api.DeleteRouteServerPeer(ctx, &ec2.DeleteRouteServerPeerInput{RouteServerPeerId: awssdk.String(p.ID)})
	if err != nil {
		err = awsErr(err)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return fmt.Errorf("deleting route-server peer %s (%s) on %s: %w", p.Name, p.ID, a.endpoint, err)
	}
	return nil
}

// AWSAutoScalingGroup lists the running instances of an Auto Scaling
// group (by the aws:autoscaling:groupName tag EC2 puts on them).
type AWSAutoScalingGroup struct {
	api   AWSRouteServerAPI
	group string
}

// NewAWSAutoScalingGroup returns the inventory of group.
func NewAWSAutoScalingGroup(api AWSRouteServerAPI, group string) *AWSAutoScalingGroup {
	return &AWSAutoScalingGroup{api: api, group: group}
}

// Instances implements Inventory.
func (g *AWSAutoScalingGroup) Instances(ctx context.Context) ([]Instance, error) {
	var out []Instance
	p := ec2.NewDescribeInstancesPaginator(g.api, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: awssdk.String("tag:aws:autoscaling:groupName"), Values: []string{g.group}},
		{Name: awssdk.String("instance-state-name"), Values: []string{"running"}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing instances of Auto Scaling group %s: %w", g.group, err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				if ip := awssdk.ToString(in.PrivateIpAddress); ip != "" {
					out = append(out, Instance{Name: awssdk.ToString(in.InstanceId), IP: ip})
				}
			}
		}
	}
	return out, nil
}
