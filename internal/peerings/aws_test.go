package peerings

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/batonha/baton/internal/clock"
)

// awsFake implements AWSRouteServerAPI in memory: peers go pending →
// available and deleting → deleted after one describe; writes can fail.
type awsFake struct {
	mu        sync.Mutex
	peers     map[string]*types.RouteServerPeer
	next      int
	instances []string
	failures  []string // error codes for the next writes
	writes    []string
}

func newAWSFake() *awsFake { return &awsFake{peers: map[string]*types.RouteServerPeer{}} }

func (f *awsFake) add(endpoint, ip, name string, state types.RouteServerPeerState, up bool) string {
	f.next++
	id := fmt.Sprintf("rsp-%08d", f.next)
	p := &types.RouteServerPeer{RouteServerPeerId: awssdk.String(id), RouteServerEndpointId: awssdk.String(endpoint),
		PeerAddress: awssdk.String(ip), State: state, BgpOptions: &types.RouteServerBgpOptions{PeerAsn: awssdk.Int64(65001)},
		BgpStatus: &types.RouteServerBgpStatus{Status: types.RouteServerBgpStateDown}}
	if up {
		p.BgpStatus.Status = types.RouteServerBgpStateUp
	}
	if name != "" {
		p.Tags = []types.Tag{{Key: awssdk.String(ManagedTag), Value: awssdk.String(name)}}
	}
	f.peers[id] = p
	return id
}

func (f *awsFake) fail() error {
	if len(f.failures) == 0 {
		return nil
	}
	code := f.failures[0]
	f.failures = f.failures[1:]
	return &smithy.GenericAPIError{Code: code, Message: "injected"}
}

func (f *awsFake) CreateRouteServerPeer(_ context.Context, in *ec2.CreateRouteServerPeerInput, _ ...func(*ec2.Options)) (*ec2.CreateRouteServerPeerOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, "create "+awssdk.ToString(in.PeerAddress)+" on "+awssdk.ToString(in.RouteServerEndpointId))
	if err := f.fail(); err != nil {
		return nil, err
	}
	if in.BgpOptions == nil || in.BgpOptions.PeerLivenessDetection != types.RouteServerPeerLivenessModeBfd {
		return nil, &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "test expects bfd liveness"}
	}
	name := ""
	for _, ts := range in.TagSpecifications {
		for _, t := range ts.Tags {
			if awssdk.ToString(t.Key) == ManagedTag {
				name = awssdk.ToString(t.Value)
			}
		}
	}
	id := f.add(awssdk.ToString(in.RouteServerEndpointId), awssdk.ToString(in.PeerAddress), name, types.RouteServerPeerStatePending, false)
	return &ec2.CreateRouteServerPeerOutput{RouteServerPeer: f.peers[id]}, nil
}

func (f *awsFake) DeleteRouteServerPeer(_ context.Context, in *ec2.DeleteRouteServerPeerInput, _ ...func(*ec2.Options)) (*ec2.DeleteRouteServerPeerOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := awssdk.ToString(in.RouteServerPeerId)
	f.writes = append(f.writes, "delete "+id)
	if err := f.fail(); err != nil {
		return nil, err
	}
	p, ok := f.peers[id]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "InvalidRouteServerPeerId.NotFound"}
	}
	p.State = types.RouteServerPeerStateDeleting
	return &ec2.DeleteRouteServerPeerOutput{RouteServerPeer: p}, nil
}

func (f *awsFake) DescribeRouteServerPeers(_ context.Context, in *ec2.DescribeRouteServerPeersInput, _ ...func(*ec2.Options)) (*ec2.DescribeRouteServerPeersOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.peers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := &ec2.DescribeRouteServerPeersOutput{}
	for _, id := range ids {
		p := f.peers[id]
		match := true
		for _, flt := range in.Filters {
			switch awssdk.ToString(flt.Name) {
			case "route-server-endpoint-id":
				match = match && awssdk.ToString(p.RouteServerEndpointId) == flt.Values[0]
			case "tag:" + ManagedTag:
				v := ""
				for _, t := range p.Tags {
					if awssdk.ToString(t.Key) == ManagedTag {
						v = awssdk.ToString(t.Value)
					}
				}
				match = match && v == flt.Values[0]
			}
		}
		if match {
			out.RouteServerPeers = append(out.RouteServerPeers, *p)
		}
		// Operations settle after being seen once.
		switch p.State {
		case types.RouteServerPeerStatePending:
			p.State = types.RouteServerPeerStateAvailable
		case types.RouteServerPeerStateDeleting:
			delete(f.peers, id)
		}
	}
	return out, nil
}

func (f *awsFake) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var insts []types.Instance
	for i, ip := range f.instances {
		insts = append(insts, types.Instance{InstanceId: awssdk.String(fmt.Sprintf("i-%04d", i)), PrivateIpAddress: awssdk.String(ip)})
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: insts}}}, nil
}

func (f *awsFake) endpointIPs(endpoint string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.peers {
		if awssdk.ToString(p.RouteServerEndpointId) == endpoint {
			out = append(out, awssdk.ToString(p.PeerAddress))
		}
	}
	sort.Strings(out)
	return out
}

func TestAWSConvergesOnEveryEndpoint(t *testing.T) {
	f := newAWSFake()
	f.instances = []string{"10.0.1.10", "10.0.1.11"}
	f.add("rse-0000000a", "10.0.1.99", "", types.RouteServerPeerStateAvailable, true)                 // not baton's
	f.add("rse-0000000b", "10.0.1.12", "baton-10-0-1-12", types.RouteServerPeerStateAvailable, false) // stale
	f.failures = []string{"RequestLimitExceeded", "IncorrectState"}
	var c Config
	c.SetDefaults()
	c.Provider = ProviderAWS
	c.AWS = AWS{Region: "eu-west-1", Endpoints: []string{"rse-0000000a", "rse-0000000b"}, AutoScalingGroup: "nva", Liveness: "bfd"}
	inv, servers := AWSBackends(f, c)
	clk := clock.NewFake(time.Unix(0, 0))
	rec := New(inv, servers, Options{NamePrefix: c.NamePrefix, PeerASN: 65001, OperationTimeout: time.Minute, Clock: clk})
	plans, err := runRound(t, rec, clk)
	if err != nil {
		t.Fatalf("round: %v %+v", err, plans)
	}
	if got := f.endpointIPs("rse-0000000a"); fmt.Sprint(got) != "[10.0.1.10 10.0.1.11 10.0.1.99]" {
		t.Errorf("endpoint a peers = %v", got)
	}
	if got := f.endpointIPs("rse-0000000b"); fmt.Sprint(got) != "[10.0.1.10 10.0.1.11]" {
		t.Errorf("endpoint b peers = %v", got)
	}
	f.mu.Lock()
	nw := len(f.writes)
	f.mu.Unlock()
	if nw != 4+1+2 { // 4 creates, 1 delete, 2 retried after throttling/IncorrectState
		t.Errorf("writes = %v", f.writes)
	}
	f.mu.Lock()
	f.writes = nil
	f.mu.Unlock()
	if _, err := runRound(t, rec, clk); err != nil || len(f.writes) != 0 {
		t.Fatalf("second round: %v, writes %v", err, f.writes)
	}
}

func TestAWSStateMapping(t *testing.T) {
	for in, want := range map[types.RouteServerPeerState]string{
		types.RouteServerPeerStateAvailable: StateSucceeded, types.RouteServerPeerStatePending: StateCreating,
		types.RouteServerPeerStateDeleting: StateDeleting, types.RouteServerPeerStateFailed: StateFailed,
	} {
		if got := awsState(in); got != want {
			t.Errorf("awsState(%s) = %s, want %s", in, got, want)
		}
	}
}
