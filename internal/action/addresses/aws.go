package addresses

import (
	"context"
	"errors"
	"fmt"
	"slices"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/batonha/baton/internal/action/routes"
	provaws "github.com/batonha/baton/internal/provider/aws"
)

// NewAWS returns the action for AWS over api (an *ec2.Client or a fake).
func NewAWS(cfg Config, api provaws.EC2API, opts Options) (*Action, error) {
	if cfg.AWS == nil {
		return nil, errors.New("creating AWS addresses action: addresses.aws is not set")
	}
	opts = fillBackoff(opts, cfg.Attempts)
	return newAction(&awsMover{api: api, c: *cfg.AWS, opts: opts}, opts), nil
}

type awsMover struct {
	api  provaws.EC2API
	c    AWS
	opts Options
}

func awsErr(err error, perm, what string) error {
	switch {
	case err == nil:
		return nil
	case provaws.IsDenied(err):
		return fmt.Errorf("%s: missing IAM permission %s: %w", what, perm, err)
	case provaws.IsNotFound(err):
		return fmt.Errorf("%s: does not exist: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (m *awsMover) do(ctx context.Context, what string, fn func(context.Context) error) error {
	_, err := m.opts.Backoff.Do(ctx, what, provaws.Classify, fn)
	return err
}

func (m *awsMover) localIPs(ctx context.Context) ([]string, error) {
	var ips []string
	err := m.do(ctx, "reading ENI "+m.c.LocalENI, func(ctx context.Context) error {
		out, err := m.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{m.c.LocalENI}})
		if err != nil {
			return awsErr(err, "ec2:DescribeNetworkInterfaces", "addresses.aws.local_eni "+m.c.LocalENI)
		}
		if len(out.NetworkInterfaces) != 1 {
			return fmt.Errorf("addresses.aws.local_eni %s: not found", m.c.LocalENI)
		}
		ips = ips[:0]
		for _, a := range out.NetworkInterfaces[0].PrivateIpAddresses {
			ips = append(ips, awssdk.ToString(a.PrivateIpAddress))
		}
		return nil
	})
	return ips, err
}

func (m *awsMover) describeEIP(ctx context.Context, e ElasticIP) (types.Address, error) {
	in := &ec2.DescribeAddressesInput{}
	name := e.AllocationID
	if name != "" {
		in.AllocationIds = []string{name}
	} else {
		name = e.PublicIP
		in.PublicIps = []string{name}
	}
	var addr types.Address
	err := m.do(ctx, "reading Elastic IP "+name, func(ctx context.Context) error {
		out, err := m.api.DescribeAddresses(ctx, in)
		if err != nil {
			return awsErr(err, "ec2:DescribeAddresses", "Elastic IP "+name)
		}
		if len(out.Addresses) != 1 {
			return fmt.Errorf("looking up Elastic IP %s: found %d addresses", name, len(out.Addresses))
		}
		addr = out.Addresses[0]
		return nil
	})
	return addr, err
}

func (m *awsMover) check(ctx context.Context) error {
	var errs []error
	if _, err := m.localIPs(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, e := range m.c.ElasticIPs {
		if _, err := m.describeEIP(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *awsMover) ensure(ctx context.Context, repair bool) ([]Change, error) {
	start := m.opts.Clock.Now()
	var changes []Change
	var errs []error
	have, err := m.localIPs(ctx)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, ip := range m.c.PrivateIPs {
		if !slices.Contains(have, ip) {
			missing = append(missing, ip)
		}
	}
	if len(missing) > 0 {
		err := m.do(ctx, fmt.Sprintf("assigning %v to %s", missing, m.c.LocalENI), func(ctx context.Context) error {
			_, err := m.api.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
				NetworkInterfaceId: awssdk.String(m.c.LocalENI), PrivateIpAddresses: missing, AllowReassignment: awssdk.Bool(true),
			})
			return awsErr(err, "ec2:AssignPrivateIpAddresses", "ENI "+m.c.LocalENI)
		})
		if err == nil {
			if have, err = m.localIPs(ctx); err == nil {
				for _, ip := range missing {
					if !slices.Contains(have, ip) {
						err = errors.Join(err, fmt.Errorf("read-back of ENI %s lacks %s", m.c.LocalENI, ip))
					}
				}
			}
		}
		for _, ip := range missing {
			changes = append(changes, Change{Address: ip, Kind: "private", Started: start, Duration: m.opts.Clock.Now().Sub(start), Err: err})
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, e := range m.c.ElasticIPs {
		addr, err := m.describeEIP(ctx, e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if awssdk.ToString(addr.NetworkInterfaceId) == m.c.LocalENI && (e.PrivateIP == "" || awssdk.ToString(addr.PrivateIpAddress) == e.PrivateIP) {
			continue
		}
		alloc := awssdk.ToString(addr.AllocationId)
		in := &ec2.AssociateAddressInput{AllocationId: addr.AllocationId, NetworkInterfaceId: awssdk.String(m.c.LocalENI), AllowReassociation: awssdk.Bool(true)}
		if e.PrivateIP != "" {
			in.PrivateIpAddress = awssdk.String(e.PrivateIP)
		}
		err = m.do(ctx, fmt.Sprintf("associating Elastic IP %s with %s", alloc, m.c.LocalENI), func(ctx context.Context) error {
			_, err := m.api.AssociateAddress(ctx, in)
			return awsErr(err, "ec2:AssociateAddress", "Elastic IP "+alloc)
		})
		if err == nil {
			var back types.Address
			if back, err = m.describeEIP(ctx, ElasticIP{AllocationID: alloc}); err == nil && awssdk.ToString(back.NetworkInterfaceId) != m.c.LocalENI {
				err = fmt.Errorf("read-back of Elastic IP %s shows it on %q", alloc, awssdk.ToString(back.NetworkInterfaceId))
			}
		}
		changes = append(changes, Change{Address: alloc, Kind: "public", Started: start, Duration: m.opts.Clock.Now().Sub(start), Err: err})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return changes, errors.Join(errs...)
}

// register keeps the fencing token in FenceTag on this node's ENI and on
// every Elastic IP (shared by both nodes). Private IPs have no resource
// both nodes name (the ENI holding one is the peer's), so on AWS they are
// fenced only through the Elastic IPs configured beside them.
func (m *awsMover) register() routes.Register {
	var ids []string // resolved by the last Read, written by Write
	return routes.Register{
		What: "ENI " + m.c.LocalENI + " and the Elastic IPs",
		Read: func(ctx context.Context) (uint64, string, error) {
			out, err := m.api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{m.c.LocalENI}})
			if err != nil {
				return 0, "", awsErr(err, "ec2:DescribeNetworkInterfaces", "addresses.aws.local_eni "+m.c.LocalENI)
			}
			best, where := routes.AWSTokens(out.NetworkInterfaces, func(n types.NetworkInterface) string { return "ENI " + awssdk.ToString(n.NetworkInterfaceId) },
				func(n types.NetworkInterface) []types.Tag { return n.TagSet })
			ids = []string{m.c.LocalENI}
			for _, e := range m.c.ElasticIPs {
				addr, err := m.describeEIP(ctx, e)
				if err != nil {
					return 0, "", err
				}
				ids = append(ids, awssdk.ToString(addr.AllocationId))
				if have, w := routes.AWSTokens([]types.Address{addr}, func(a types.Address) string { return "Elastic IP " + awssdk.ToString(a.AllocationId) },
					func(a types.Address) []types.Tag { return a.Tags }); have > best {
					best, where = have, w
				}
			}
			return best, where, nil
		},
		Write: func(ctx context.Context, token uint64) error { return routes.AWSWriteTokens(ctx, m.api, ids, token) },
	}
}
