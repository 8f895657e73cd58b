// Package aws adapts baton to Amazon EC2: it builds an EC2 client from the
// standard credential chain (environment, shared files, IMDSv2 instance
// role), declares EC2API with exactly the SDK calls baton makes, and
// classifies EC2 errors into throttling, transient, missing resources and
// missing permissions.
package aws

import (
	"context"
	"fmt"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// EC2API holds only the EC2 calls baton makes, with the SDK's signatures,
// so tests can replace the client. *ec2.Client implements it.
type EC2API interface {
	DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
	ReplaceRoute(ctx context.Context, in *ec2.ReplaceRouteInput, optFns ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error)
	CreateRoute(ctx context.Context, in *ec2.CreateRouteInput, optFns ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error)
	DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	AssignPrivateIpAddresses(ctx context.Context, in *ec2.AssignPrivateIpAddressesInput, optFns ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error)
	DescribeAddresses(ctx context.Context, in *ec2.DescribeAddressesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error)
	AssociateAddress(ctx context.Context, in *ec2.AssociateAddressInput, optFns ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
}

var _ EC2API = (*ec2.Client)(nil)

// Options selects the region and, for tests, an endpoint.
type Options struct {
	// Region; empty means the SDK's default chain (AWS_REGION, profile,
	// instance metadata).
	Region string
	// Endpoint overrides the EC2 endpoint URL (tests: moto_server).
	Endpoint string
	// MaxAttempts is the SDK's own retry budget per call. baton retries
	// throttling itself with jittered backoff on an injected clock, so the
	// default (0) means 1: the SDK does not retry.
	MaxAttempts int
}

// New returns an EC2 client built from the default credential chain
// (environment, shared config and credentials files, web identity, ECS,
// EC2 instance role through IMDSv2). Credentials are never logged.
func New(ctx context.Context, o Options) (*ec2.Client, error) {
	var loadOpts []func(*config.LoadOptions) error
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration (region %q): %w", o.Region, err)
	}
	attempts := o.MaxAttempts
	if attempts <= 0 {
		attempts = 1
	}
	return ec2.NewFromConfig(cfg, func(eo *ec2.Options) {
		if o.Endpoint != "" {
			eo.BaseEndpoint = awssdk.String(o.Endpoint)
		}
		eo.RetryMaxAttempts = attempts
	}), nil
}
