// Package awstest provides an in-memory EC2 that implements aws.EC2API for
// unit tests: route tables, network interfaces and Elastic IPs, with the
// filters baton uses, AWS's reassignment rules, and a hook to inject faults.
// It covers what moto_server does not (route.network-interface-id and
// route.instance-id filters, AllowReassignment semantics).
package awstest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	provider "github.com/batonha/baton/internal/provider/aws"
)

// Fake is an in-memory EC2. The zero value is not usable; call New.
type Fake struct {
	mu     sync.Mutex
	tables map[string]*types.RouteTable
	enis   map[string]*types.NetworkInterface
	addrs  map[string]*types.Address // by allocation ID
	calls  []string
	// Fault, when set, runs before every call with the operation name and
	// input; a non-nil error is returned instead of performing the call.
	fault func(op string, in any) error
}

var _ provider.EC2API = (*Fake)(nil)

// New returns an empty fake.
func New() *Fake {
	return &Fake{
		tables: map[string]*types.RouteTable{},
		enis:   map[string]*types.NetworkInterface{},
		addrs:  map[string]*types.Address{},
	}
}

// APIError builds an EC2-style error with a code, as the SDK returns it.
func APIError(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

// SetFault installs (or with nil removes) the fault hook.
func (f *Fake) SetFault(fn func(op string, in any) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// Calls returns the operations performed so far, in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// AddTable adds a route table in vpc with tags and routes given as
// destination → target ("eni-…", "i-…", "igw-…", "local").
func (f *Fake) AddTable(id, vpc string, tags map[string]string, routes map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rt := &types.RouteTable{RouteTableId: awssdk.String(id), VpcId: awssdk.String(vpc)}
	for k, v := range tags {
		rt.Tags = append(rt.Tags, types.Tag{Key: awssdk.String(k), Value: awssdk.String(v)})
	}
	for dst, tgt := range routes {
		rt.Routes = append(rt.Routes, route(dst, tgt))
	}
	f.tables[id] = rt
}

// Target returns the target of dst in table, "" when missing.
func (f *Fake) Target(table, dst string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	rt := f.tables[table]
	if rt == nil {
		return ""
	}
	for _, r := range rt.Routes {
		if awssdk.ToString(r.DestinationCidrBlock) == dst || awssdk.ToString(r.DestinationIpv6CidrBlock) == dst {
			return target(r)
		}
	}
	return ""
}

// SetTarget points dst in table at tgt (drift injected by a test).
func (f *Fake) SetTarget(table, dst, tgt string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rt := f.tables[table]
	for i, r := range rt.Routes {
		if awssdk.ToString(r.DestinationCidrBlock) == dst {
			rt.Routes[i] = route(dst, tgt)
		}
	}
}

// AddENI adds a network interface with a primary and secondary IPs.
func (f *Fake) AddENI(id, primary string, secondary ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := &types.NetworkInterface{NetworkInterfaceId: awssdk.String(id), PrivateIpAddress: awssdk.String(primary)}
	n.PrivateIpAddresses = append(n.PrivateIpAddresses, types.NetworkInterfacePrivateIpAddress{PrivateIpAddress: awssdk.String(primary), Primary: awssdk.Bool(true)})
	for _, ip := range secondary {
		n.PrivateIpAddresses = append(n.PrivateIpAddresses, types.NetworkInterfacePrivateIpAddress{PrivateIpAddress: awssdk.String(ip), Primary: awssdk.Bool(false)})
	}
	f.enis[id] = n
}

// IPs returns the private IPs of an ENI, primary first.
func (f *Fake) IPs(eni string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	if n := f.enis[eni]; n != nil {
		for _, a := range n.PrivateIpAddresses {
			out = append(out, awssdk.ToString(a.PrivateIpAddress))
		}
	}
	return out
}

// AddAddress adds an Elastic IP, associated with eni when eni is not "".
func (f *Fake) AddAddress(alloc, public, eni string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := &types.Address{AllocationId: awssdk.String(alloc), PublicIp: awssdk.String(public), Domain: types.DomainTypeVpc}
	if eni != "" {
		a.NetworkInterfaceId = awssdk.String(eni)
		a.AssociationId = awssdk.String("eipassoc-" + alloc)
	}
	f.addrs[alloc] = a
}

// AddressENI returns the ENI an Elastic IP is associated with.
func (f *Fake) AddressENI(alloc string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.addrs[alloc]; a != nil {
		return awssdk.ToString(a.NetworkInterfaceId)
	}
	return ""
}

func route(dst, tgt string) types.Route {
	r := types.Route{State: types.RouteStateActive}
	if strings.Contains(dst, ":") {
		r.DestinationIpv6CidrBlock = awssdk.String(dst)
	} else {
		r.DestinationCidrBlock = awssdk.String(dst)
	}
	switch {
	case strings.HasPrefix(tgt, "eni-"):
		r.NetworkInterfaceId = awssdk.String(tgt)
	case strings.HasPrefix(tgt, "i-"):
		r.InstanceId = awssdk.String(tgt)
	default:
		r.GatewayId = awssdk.String(tgt)
	}
	return r
}

func target(r types.Route) string {
	switch {
	case r.NetworkInterfaceId != nil:
		return *r.NetworkInterfaceId
	case r.InstanceId != nil:
		return *r.InstanceId
	}
	return awssdk.ToString(r.GatewayId)
}

// begin records the call and runs the fault hook; the lock is held after.
func (f *Fake) begin(op string, in any) error {
	f.mu.Lock()
	f.calls = append(f.calls, op)
	fault := f.fault
	f.mu.Unlock()
	if fault != nil {
		if err := fault(op, in); err != nil {
			return err
		}
	}
	f.mu.Lock()
	return nil
}

func matches(filters []types.Filter, get func(name string) []string) bool {
	for _, flt := range filters {
		have := get(awssdk.ToString(flt.Name))
		ok := false
		for _, v := range flt.Values {
			if slices.Contains(have, v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (f *Fake) DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, _ ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	if err := f.begin("DescribeRouteTables", in); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := &ec2.DescribeRouteTablesOutput{}
	for _, id := range in.RouteTableIds {
		if f.tables[id] == nil {
			return nil, APIError("InvalidRouteTableID.NotFound", fmt.Sprintf("The routeTable ID '%s' does not exist", id))
		}
	}
	ids := make([]string, 0, len(f.tables))
	for id := range f.tables {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		rt := f.tables[id]
		if len(in.RouteTableIds) > 0 && !slices.Contains(in.RouteTableIds, id) {
			continue
		}
		ok := matches(in.Filters, func(name string) []string {
			switch {
			case name == "route-table-id":
				return []string{id}
			case name == "vpc-id":
				return []string{awssdk.ToString(rt.VpcId)}
			case strings.HasPrefix(name, "tag:"):
				for _, t := range rt.Tags {
					if awssdk.ToString(t.Key) == name[4:] {
						return []string{awssdk.ToString(t.Value)}
					}
				}
			case name == "route.network-interface-id":
				var v []string
				for _, r := range rt.Routes {
					v = append(v, awssdk.ToString(r.NetworkInterfaceId))
				}
				return v
			case name == "route.instance-id":
				var v []string
				for _, r := range rt.Routes {
					v = append(v, awssdk.ToString(r.InstanceId))
				}
				return v
			}
			return nil
		})
		if ok {
			c := *rt
			c.Routes = slices.Clone(rt.Routes)
			out.RouteTables = append(out.RouteTables, c)
		}
	}
	return out, nil
}

func (f *Fake) findRoute(table string, cidr, cidr6 *string) (*types.RouteTable, int, error) {
	rt := f.tables[awssdk.ToString(&table)]
	if rt == nil {
		return nil, -1, APIError("InvalidRouteTableID.NotFound", fmt.Sprintf("The routeTable ID '%s' does not exist", table))
	}
	for i, r := range rt.Routes {
		if (cidr != nil && awssdk.ToString(r.DestinationCidrBlock) == *cidr) || (cidr6 != nil && awssdk.ToString(r.DestinationIpv6CidrBlock) == *cidr6) {
			return rt, i, nil
		}
	}
	return rt, -1, nil
}

func newTarget(eni, inst *string) (string, error) {
	switch {
	case eni != nil:
		return *eni, nil
	case inst != nil:
		return *inst, nil
	}
	return "", APIError("MissingParameter", "a target is required")
}

func dest(cidr, cidr6 *string) string {
	if cidr != nil {
		return *cidr
	}
	return awssdk.ToString(cidr6)
}

func (f *Fake) ReplaceRoute(ctx context.Context, in *ec2.ReplaceRouteInput, _ ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error) {
	if err := f.begin("ReplaceRoute", in); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	rt, i, err := f.findRoute(awssdk.ToString(in.RouteTableId), in.DestinationCidrBlock, in.DestinationIpv6CidrBlock)
	if err != nil {
		return nil, err
	}
	if i < 0 {
		return nil, APIError("InvalidParameterValue", fmt.Sprintf("There is no route defined for '%s' in the route table", dest(in.DestinationCidrBlock, in.DestinationIpv6CidrBlock)))
	}
	tgt, err := newTarget(in.NetworkInterfaceId, in.InstanceId)
	if err != nil {
		return nil, err
	}
	rt.Routes[i] = route(dest(in.DestinationCidrBlock, in.DestinationIpv6CidrBlock), tgt)
	return &ec2.ReplaceRouteOutput{}, nil
}

func (f *Fake) CreateRoute(ctx context.Context, in *ec2.CreateRouteInput, _ ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error) {
	if err := f.begin("CreateRoute", in); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	rt, i, err := f.findRoute(awssdk.ToString(in.RouteTableId), in.DestinationCidrBlock, in.DestinationIpv6CidrBlock)
	if err != nil {
		return nil, err
	}
	if i >= 0 {
		return nil, APIError("RouteAlreadyExists", "The route identified by "+dest(in.DestinationCidrBlock, in.DestinationIpv6CidrBlock)+" already exists.")
	}
	tgt, err := newTarget(in.NetworkInterfaceId, in.InstanceId)
	if err != nil {
		return nil, err
	}
	rt.Routes = append(rt.Routes, route(dest(in.DestinationCidrBlock, in.DestinationIpv6CidrBlock), tgt))
	return &ec2.CreateRouteOutput{Return: awssdk.Bool(true)}, nil
}

func (f *Fake) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	if err := f.begin("DescribeNetworkInterfaces", in); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := &ec2.DescribeNetworkInterfacesOutput{}
	for _, id := range in.NetworkInterfaceIds {
		n := f.enis[id]
		if n == nil {
			return nil, APIError("InvalidNetworkInterfaceID.NotFound", fmt.Sprintf("The networkInterface ID '%s' does not exist", id))
		}
		c := *n
		c.PrivateIpAddresses = slices.Clone(n.PrivateIpAddresses)
		c.TagSet = slices.Clone(n.TagSet)
		out.NetworkInterfaces = append(out.NetworkInterfaces, c)
	}
	return out, nil
}

func (f *Fake) AssignPrivateIpAddresses(ctx context.Context, in *ec2.AssignPrivateIpAddressesInput, _ ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error) {
	if err := f.begin("AssignPrivateIpAddresses", in); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	dst := f.enis[awssdk.ToString(in.NetworkInterfaceId)]
	if dst == nil {
		return nil, APIError("InvalidNetworkInterfaceID.NotFound", fmt.Sprintf("The networkInterface ID '%s' does not exist", awssdk.ToString(in.NetworkInterfaceId)))
	}
	for _, ip := range in.PrivateIpAddresses {
		for id, n := range f.enis {
			for j, a := range n.PrivateIpAddresses {
				if awssdk.ToString(a.PrivateIpAddress) != ip {
					continue
				}
				if id == *dst.NetworkInterfaceId {
					continue
				}
				if awssdk.ToBool(a.Primary) || !awssdk.ToBool(in.AllowReassignment) {
					return nil, APIError("PrivateIpAddressInUse", fmt.Sprintf("Address %s is in use by %s", ip, id))
				}
				n.PrivateIpAddresses = slices.Delete(n.PrivateIpAddresses, j, j+1)
				break
			}
		}
		has := false
		for _, a := range dst.PrivateIpAddresses {
			has = has || awssdk.ToString(a.PrivateIpAddress) == ip
		}
		if !has {
			dst.PrivateIpAddresses = append(dst.PrivateIpAddresses, types.NetworkInterfacePrivateIpAddress{PrivateIpAddress: awssdk.String(ip), Primary: awssdk.Bool(false)})
		}
	}
	return &ec2.AssignPrivateIpAddressesOutput{NetworkInterfaceId: dst.NetworkInterfaceId}, nil
}

func (f *Fake) DescribeAddresses(ctx context.Context, in *ec2.DescribeAddressesInput, _ ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error) {
	if err := f.begin("DescribeAddresses", in); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := &ec2.DescribeAddressesOutput{}
	for _, id := range in.AllocationIds {
		a := f.addrs[id]
		if a == nil {
			return nil, APIError("InvalidAllocationID.NotFound", fmt.Sprintf("The allocation ID '%s' does not exist", id))
		}
		out.Addresses = append(out.Addresses, *a)
	}
	for _, ip := range in.PublicIps {
		found := false
		for _, a := range f.addrs {
			if awssdk.ToString(a.PublicIp) == ip {
				out.Addresses = append(out.Addresses, *a)
				found = true
			}
		}
		if !found {
			return nil, APIError("InvalidAddress.NotFound", fmt.Sprintf("Address '%s' not found.", ip))
		}
	}
	return out, nil
}

func (f *Fake) AssociateAddress(ctx context.Context, in *ec2.AssociateAddressInput, _ ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	if err := f.begin("AssociateAddress", in); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	a := f.addrs[awssdk.ToString(in.AllocationId)]
	if a == nil {
		return nil, APIError("InvalidAllocationID.NotFound", fmt.Sprintf("The allocation ID '%s' does not exist", awssdk.ToString(in.AllocationId)))
	}
	eni := awssdk.ToString(in.NetworkInterfaceId)
	if f.enis[eni] == nil {
		return nil, APIError("InvalidNetworkInterfaceID.NotFound", fmt.Sprintf("The networkInterface ID '%s' does not exist", eni))
	}
	if a.NetworkInterfaceId != nil && *a.NetworkInterfaceId != eni && !awssdk.ToBool(in.AllowReassociation) {
		return nil, APIError("Resource.AlreadyAssociated", "resource "+*a.AllocationId+" is already associated")
	}
	a.NetworkInterfaceId = awssdk.String(eni)
	a.PrivateIpAddress = in.PrivateIpAddress
	a.AssociationId = awssdk.String("eipassoc-" + *a.AllocationId)
	return &ec2.AssociateAddressOutput{AssociationId: a.AssociationId}, nil
}

// CreateTags sets tags on route tables, network interfaces and Elastic
// IPs (by allocation ID), the resources baton tags.
func (f *Fake) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	if err := f.begin("CreateTags", in); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	for _, id := range in.Resources {
		var tags *[]types.Tag
		switch {
		case f.tables[id] != nil:
			tags = &f.tables[id].Tags
		case f.enis[id] != nil:
			tags = &f.enis[id].TagSet
		case f.addrs[id] != nil:
			tags = &f.addrs[id].Tags
		default:
			return nil, APIError("InvalidID", "The ID '"+id+"' is not valid")
		}
		for _, t := range in.Tags {
			replaced := false
			for i := range *tags {
				if awssdk.ToString((*tags)[i].Key) == awssdk.ToString(t.Key) {
					(*tags)[i].Value = t.Value
					replaced = true
				}
			}
			if !replaced {
				*tags = append(*tags, types.Tag{Key: t.Key, Value: t.Value})
			}
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}
