package fencerace

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/routes"
	provider "github.com/batonha/baton/internal/provider/aws"
	"github.com/batonha/baton/internal/retry"
)

// AWS is a Cloud over api's route tables, each holding every destination
// of dests, between the stale node's ENI and the newer node's. The
// writers' state directories go under dir.
func AWS(api provider.EC2API, tables, dests []string, staleENI, newerENI, dir string) Cloud {
	n := 0
	return Cloud{
		Name: "aws",
		Reset: func(ctx context.Context, staleToken uint64) error {
			for _, tb := range tables {
				for _, d := range dests {
					if err := again(func() error {
						_, err := api.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: awssdk.String(tb), DestinationCidrBlock: awssdk.String(d), NetworkInterfaceId: awssdk.String(staleENI)})
						return err
					}); err != nil {
						return fmt.Errorf("pointing %s in %s at the stale node: %w", d, tb, err)
					}
				}
			}
			return again(func() error { return routes.AWSWriteTokens(ctx, api, tables, staleToken) })
		},
		Writer: func(node string, g *Gate) (action.Action, error) {
			n++
			local, peer := staleENI, newerENI
			if node == "newer" {
				local, peer = newerENI, staleENI
			}
			cfg := routes.Config{Cloud: "aws", StateDir: filepath.Join(dir, node+strconv.Itoa(n)), Attempts: 2, AWS: &routes.AWS{
				Region: "us-east-1", TableIDs: tables, Destinations: dests, LocalENI: local, PeerENI: peer,
			}}
			if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
				return nil, err
			}
			if errs := cfg.Validate(); len(errs) > 0 {
				return nil, fmt.Errorf("configuring the %s writer: %w", node, errs[0])
			}
			return routes.NewAWS(cfg, &gatedEC2{EC2API: api, g: g}, routes.Options{Backoff: retry.Backoff{Base: -1}})
		},
		Check: func(ctx context.Context, newerToken uint64) error {
			var out *ec2.DescribeRouteTablesOutput
			if err := again(func() error {
				var err error
				out, err = api.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: tables})
				return err
			}); err != nil {
				return err
			}
			for _, rt := range out.RouteTables {
				id := awssdk.ToString(rt.RouteTableId)
				if have, _ := routes.AWSTokens([]types.RouteTable{rt}, func(types.RouteTable) string { return id }, func(rt types.RouteTable) []types.Tag { return rt.Tags }); have != newerToken {
					return fmt.Errorf("route table %s records fencing token %d, want the newer node's %d", id, have, newerToken)
				}
				for _, r := range rt.Routes {
					d := awssdk.ToString(r.DestinationCidrBlock)
					for _, want := range dests {
						if d == want && awssdk.ToString(r.NetworkInterfaceId) != newerENI {
							return fmt.Errorf("route %s in %s points at %s, want the newer node's %s", d, id, awssdk.ToString(r.NetworkInterfaceId), newerENI)
						}
					}
				}
			}
			return nil
		},
	}
}

// again retries the setup's own calls: moto's server now and then drops a
// kept-alive connection, which is no part of the race.
func again(fn func() error) error {
	var err error
	for range 3 {
		if err = fn(); err == nil {
			return nil
		}
	}
	return err
}

// gatedEC2 passes the gate before every call.
type gatedEC2 struct {
	provider.EC2API
	g *Gate
}

func (c *gatedEC2) DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, o ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	if err := c.g.Wait(ctx); err != nil {
		return nil, err
	}
	return c.EC2API.DescribeRouteTables(ctx, in, o...)
}

func (c *gatedEC2) ReplaceRoute(ctx context.Context, in *ec2.ReplaceRouteInput, o ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error) {
	if err := c.g.Wait(ctx); err != nil {
		return nil, err
	}
	return c.EC2API.ReplaceRoute(ctx, in, o...)
}

func (c *gatedEC2) CreateRoute(ctx context.Context, in *ec2.CreateRouteInput, o ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error) {
	if err := c.g.Wait(ctx); err != nil {
		return nil, err
	}
	return c.EC2API.CreateRoute(ctx, in, o...)
}

func (c *gatedEC2) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, o ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	if err := c.g.Wait(ctx); err != nil {
		return nil, err
	}
	return c.EC2API.CreateTags(ctx, in, o...)
}
