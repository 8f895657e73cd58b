package routes

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	provider "github.com/batonha/baton/internal/provider/aws"
)

// NewAWS returns the routes action for AWS over api (an *ec2.Client from
// provider/aws.New, or a fake). cfg must have passed Validate.
func NewAWS(cfg Config, api provider.EC2API, opts Options) (*Action, error) {
	if cfg.AWS == nil {
		return nil, fmt.Errorf("creating AWS routes action: routes.aws is not set")
	}
	opts = withConfig(cfg, opts)
	return NewWithBackend(&awsBackend{api: api, c: *cfg.AWS}, Selection{
		Destinations: cfg.AWS.Destinations, PeerTargets: cfg.AWS.PeerTargets, CreateMissing: cfg.AWS.CreateMissing,
	}, opts)
}

// New builds the routes action for the configured cloud with the standard
// credential chain (AWS default chain with IMDSv2; Azure
// DefaultAzureCredential).
func New(ctx context.Context, cfg Config, opts Options) (*Action, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("creating routes action: invalid configuration: %w", errs[0])
	}
	switch cfg.Cloud {
	case "aws":
		c, err := provider.New(ctx, provider.Options{Region: cfg.AWS.Region, Endpoint: cfg.AWS.Endpoint})
		if err != nil {
			return nil, fmt.Errorf("creating routes action: %w", err)
		}
		return NewAWS(cfg, c, opts)
	default:
		clients, err := newAzureClients(cfg)
		if err != nil {
			return nil, fmt.Errorf("creating routes action: %w", err)
		}
		return NewAzure(cfg, clients, opts)
	}
}

func withConfig(cfg Config, opts Options) Options {
	if opts.Concurrency == 0 {
		opts.Concurrency = cfg.Concurrency
	}
	if opts.StateDir == "" {
		opts.StateDir = cfg.StateDir
	}
	if opts.Backoff.Attempts == 0 {
		opts.Backoff.Attempts = cfg.Attempts
	}
	return opts
}

type awsBackend struct {
	api provider.EC2API
	c   AWS
}

func (b *awsBackend) Cloud() string { return "aws" }

func (b *awsBackend) Classify(err error) (bool, time.Duration) { return provider.Classify(err) }

func (b *awsBackend) Tables(ctx context.Context) ([]string, error) {
	if len(b.c.TableIDs) > 0 {
		return b.c.TableIDs, nil
	}
	in := &ec2.DescribeRouteTablesInput{}
	keys := make([]string, 0, len(b.c.Tags))
	for k := range b.c.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in.Filters = append(in.Filters, types.Filter{Name: awssdk.String("tag:" + k), Values: []string{b.c.Tags[k]}})
	}
	if b.c.VPC != "" {
		in.Filters = append(in.Filters, types.Filter{Name: awssdk.String("vpc-id"), Values: []string{b.c.VPC}})
	}
	var ids []string
	for {
		out, err := b.api.DescribeRouteTables(ctx, in)
		if err != nil {
			return nil, describeErr("discovering route tables by routes.aws.tags", err)
		}
		for _, rt := range out.RouteTables {
			ids = append(ids, awssdk.ToString(rt.RouteTableId))
		}
		if awssdk.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no route table matches routes.aws.tags %v (vpc %q)", b.c.Tags, b.c.VPC)
	}
	slices.Sort(ids)
	return ids, nil
}

func describeErr(what string, err error) error {
	switch {
	case provider.IsDenied(err):
		return fmt.Errorf("%s: missing IAM permission ec2:DescribeRouteTables: %w", what, err)
	case provider.IsNotFound(err):
		return fmt.Errorf("%s: route table does not exist: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (b *awsBackend) Routes(ctx context.Context, table string) ([]Route, error) {
	out, err := b.api.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{table}})
	if err != nil {
		return nil, describeErr("DescribeRouteTables", err)
	}
	if len(out.RouteTables) != 1 {
		return nil, fmt.Errorf("reading route table %s: got %d tables", table, len(out.RouteTables))
	}
	return awsRoutes(table, out.RouteTables[0]), nil
}

// RoutesOf reads several route tables in one DescribeRouteTables call
// (BatchReader), following NextToken.
func (b *awsBackend) RoutesOf(ctx context.Context, tables []string) (map[string][]Route, error) {
	in := &ec2.DescribeRouteTablesInput{RouteTableIds: tables}
	got := make(map[string][]Route, len(tables))
	for {
		out, err := b.api.DescribeRouteTables(ctx, in)
		if err != nil {
			return nil, describeErr(fmt.Sprintf("DescribeRouteTables of %d tables", len(tables)), err)
		}
		for _, rt := range out.RouteTables {
			id := awssdk.ToString(rt.RouteTableId)
			got[id] = awsRoutes(id, rt)
		}
		if awssdk.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	for _, tb := range tables {
		if _, ok := got[tb]; !ok {
			return nil, fmt.Errorf("reading route tables: %s missing from the answer", tb)
		}
	}
	return got, nil
}

func awsRoutes(table string, t types.RouteTable) []Route {
	var rs []Route
	for _, r := range t.Routes {
		dst := awssdk.ToString(r.DestinationCidrBlock)
		if dst == "" {
			dst = awssdk.ToString(r.DestinationIpv6CidrBlock)
		}
		if dst == "" {
			continue // prefix-list destinations are out of scope
		}
		rt := Route{Table: table, Destination: dst}
		switch {
		case r.NetworkInterfaceId != nil:
			rt.Target = *r.NetworkInterfaceId
			rt.Alias = awssdk.ToString(r.InstanceId)
		case r.InstanceId != nil:
			rt.Target = *r.InstanceId
		case r.GatewayId != nil:
			rt.Target = *r.GatewayId
		case r.NatGatewayId != nil:
			rt.Target = *r.NatGatewayId
		case r.TransitGatewayId != nil:
			rt.Target = *r.TransitGatewayId
		case r.VpcPeeringConnectionId != nil:
			rt.Target = *r.VpcPeeringConnectionId
		default:
			rt.Target = "(other)"
		}
		rs = append(rs, rt)
	}
	return rs
}

func (b *awsBackend) Point(ctx context.Context, r Route, exists bool) error {
	p, err := netip.ParsePrefix(r.Destination)
	if err != nil {
		return fmt.Errorf("route %s in %s: destination is not a prefix: %w", r.Destination, r.Table, err)
	}
	var v4, v6 *string
	if p.Addr().Is4() {
		v4 = awssdk.String(p.String())
	} else {
		v6 = awssdk.String(p.String())
	}
	if exists {
		_, err = b.api.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{
			RouteTableId: awssdk.String(r.Table), DestinationCidrBlock: v4, DestinationIpv6CidrBlock: v6,
			NetworkInterfaceId: awssdk.String(b.c.LocalENI),
		})
		return permErr(err, "ec2:ReplaceRoute", r.Table, b.c.LocalENI)
	}
	_, err = b.api.CreateRoute(ctx, &ec2.CreateRouteInput{
		RouteTableId: awssdk.String(r.Table), DestinationCidrBlock: v4, DestinationIpv6CidrBlock: v6,
		NetworkInterfaceId: awssdk.String(b.c.LocalENI),
	})
	return permErr(err, "ec2:CreateRoute", r.Table, b.c.LocalENI)
}

func permErr(err error, perm, table, eni string) error {
	switch {
	case err == nil:
		return nil
	case provider.IsDenied(err):
		return fmt.Errorf("missing IAM permission %s on %s: %w", perm, table, err)
	case provider.IsNotFound(err):
		return fmt.Errorf("route table %s or ENI %s does not exist: %w", table, eni, err)
	}
	return err
}

func (b *awsBackend) Owner(r Route) Owner {
	is := func(eni, inst string) bool {
		return (eni != "" && r.Target == eni) || (inst != "" && (r.Target == inst || r.Alias == inst))
	}
	switch {
	case is(b.c.LocalENI, b.c.LocalInstance):
		return OwnerLocal
	case is(b.c.PeerENI, b.c.PeerInstance):
		return OwnerPeer
	}
	return OwnerOther
}
