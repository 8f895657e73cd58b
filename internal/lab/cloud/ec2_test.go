package cloud

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/batonha/baton/internal/clock"
	provider "github.com/batonha/baton/internal/provider/aws"
)

// ec2Client is the real SDK client pointed at an emulator on loopback.
func ec2Client(t *testing.T, s *Server) *ec2.Client {
	t.Helper()
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return ec2.New(ec2.Options{
		Region: "us-east-1", BaseEndpoint: awssdk.String(hs.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

func TestEC2SDKDecodesEveryAnswer(t *testing.T) {
	s := New(Options{})
	SeedAWS(s, 0)
	s.EC2().AddENI(ENIB+"f", "10.100.1.13", "10.100.1.50")
	s.EC2().AddAddress("eipalloc-0000000000000001", "203.0.113.7", ENIA)
	var changes []RouteChange
	s.OnRouteChange(func(c RouteChange) { changes = append(changes, c) })
	c := ec2Client(t, s)
	ctx := context.Background()

	out, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{
		{Name: awssdk.String("tag:baton"), Values: []string{"lab"}},
		{Name: awssdk.String("vpc-id"), Values: []string{VPC}},
	}})
	if err != nil {
		t.Fatalf("DescribeRouteTables: %v", err)
	}
	if len(out.RouteTables) != 2 || awssdk.ToString(out.RouteTables[0].RouteTableId) != RTBClient {
		t.Fatalf("tables %+v", out.RouteTables)
	}
	var found bool
	for _, r := range out.RouteTables[0].Routes {
		if awssdk.ToString(r.DestinationCidrBlock) == ServerNet {
			found = awssdk.ToString(r.NetworkInterfaceId) == ENIA && r.State == types.RouteStateActive
		}
	}
	if !found || len(out.RouteTables[0].Tags) != 1 {
		t.Fatalf("route to the server via %s missing or tags lost: %+v", ENIA, out.RouteTables[0])
	}

	if _, err := c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: awssdk.String(RTBClient), DestinationCidrBlock: awssdk.String(ServerNet), NetworkInterfaceId: awssdk.String(ENIB)}); err != nil {
		t.Fatalf("ReplaceRoute: %v", err)
	}
	if got := s.EC2().Target(RTBClient, ServerNet); got != ENIB {
		t.Fatalf("after ReplaceRoute the route points at %s", got)
	}
	if _, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: awssdk.String(RTBServer), DestinationCidrBlock: awssdk.String("192.0.2.0/24"), NetworkInterfaceId: awssdk.String(ENIB)}); err != nil {
		t.Fatalf("CreateRoute: %v", err)
	}
	want := []RouteChange{{"aws", RTBClient, ServerNet, ENIB}, {"aws", RTBServer, "192.0.2.0/24", ENIB}}
	if len(changes) != 2 || changes[0] != want[0] || changes[1] != want[1] {
		t.Fatalf("route changes %+v, want %+v", changes, want)
	}

	enis, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{ENIB + "f"}})
	if err != nil || len(enis.NetworkInterfaces) != 1 || len(enis.NetworkInterfaces[0].PrivateIpAddresses) != 2 {
		t.Fatalf("DescribeNetworkInterfaces: %v %+v", err, enis)
	}
	if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: awssdk.String(ENIA), PrivateIpAddresses: []string{"10.100.1.50"}, AllowReassignment: awssdk.Bool(true)}); err != nil {
		t.Fatalf("AssignPrivateIpAddresses: %v", err)
	}
	if ips := s.EC2().IPs(ENIB + "f"); len(ips) != 1 {
		t.Errorf("reassigned IP still on the old ENI: %v", ips)
	}
	addrs, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{PublicIps: []string{"203.0.113.7"}})
	if err != nil || len(addrs.Addresses) != 1 || awssdk.ToString(addrs.Addresses[0].NetworkInterfaceId) != ENIA {
		t.Fatalf("DescribeAddresses: %v %+v", err, addrs)
	}
	as, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: addrs.Addresses[0].AllocationId, NetworkInterfaceId: awssdk.String(ENIB), AllowReassociation: awssdk.Bool(true)})
	if err != nil || awssdk.ToString(as.AssociationId) == "" || s.EC2().AddressENI("eipalloc-0000000000000001") != ENIB {
		t.Fatalf("AssociateAddress: %v %+v", err, as)
	}

	// Errors come back as EC2 error codes the provider classifies.
	_, err = c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{"rtb-0000000000000dead"}})
	if !provider.IsNotFound(err) {
		t.Fatalf("missing table: %v, want a NotFound code", err)
	}
	_, err = c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: awssdk.String(RTBClient), DestinationCidrBlock: awssdk.String("203.0.113.0/24"), NetworkInterfaceId: awssdk.String(ENIB)})
	if provider.Code(err) != "InvalidParameterValue" {
		t.Fatalf("replacing a missing route: %v", err)
	}
	s.SetFault(func(op string) (int, string) {
		if op == "ReplaceRoute" {
			return http.StatusForbidden, "UnauthorizedOperation"
		}
		return 0, ""
	})
	_, err = c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: awssdk.String(RTBClient), DestinationCidrBlock: awssdk.String(ServerNet), NetworkInterfaceId: awssdk.String(ENIA)})
	if !provider.IsDenied(err) {
		t.Fatalf("injected denial: %v", err)
	}
	cnt := s.Counts()
	if cnt.ByOp["ReplaceRoute"] != 3 || cnt.ByOp["DescribeRouteTables"] != 2 || cnt.Throttled != 0 {
		t.Errorf("counts %+v", cnt)
	}
}

func TestEC2ThrottleAndLatency(t *testing.T) {
	fk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(Options{Clock: fk, Rate: 2, Burst: 3})
	SeedAWS(s, 0)
	c := ec2Client(t, s)
	ctx := context.Background()
	describe := func() error {
		_, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{RTBClient}})
		return err
	}
	for i := range 3 {
		if err := describe(); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	err := describe()
	if !provider.IsThrottled(err) {
		t.Fatalf("4th call: %v, want RequestLimitExceeded", err)
	}
	if retry, _ := provider.Classify(err); !retry {
		t.Error("throttling must classify as retryable")
	}
	fk.Advance(500 * time.Millisecond) // one token at 2/s
	if err := describe(); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	if err := describe(); !provider.IsThrottled(err) {
		t.Fatalf("refused again: %v", err)
	}
	if cnt := s.Counts(); cnt.Total != 6 || cnt.Throttled != 2 || cnt.ByOp["DescribeRouteTables"] != 4 {
		t.Errorf("counts %+v", cnt)
	}

	// Latency holds the answer on the injected clock.
	slow := New(Options{Clock: fk, Latency: 100 * time.Millisecond})
	SeedAWS(slow, 0)
	sc := ec2Client(t, slow)
	done := make(chan error, 1)
	go func() {
		_, err := sc.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{RTBClient}})
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for fk.Pending() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never waited on the clock")
		}
		select {
		case err := <-done:
			t.Fatalf("answered before the latency passed: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	fk.Advance(100 * time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDecodeEC2Rejects(t *testing.T) {
	for _, q := range []string{
		"Action=DescribeRouteTables&RouteTableId.2=rtb-1", // gap
		"Action=DescribeRouteTables&RouteTableId.0=rtb-1", // index 0
		"Action=DescribeRouteTables&Filter.1.Value.1=x",   // filter without a name
		"Action=DescribeRouteTables&Filter.1.Name=vpc-id", // filter without values
		"Action=ReplaceRoute&RouteTableId=rtb-1",          // no destination
		"Action=AssociateAddress&AllocationId=eipalloc-1", // no ENI
		"Action=AssignPrivateIpAddresses&NetworkInterfaceId=eni-1&AllowReassignment=maybe",
		"Action=TerminateInstances&InstanceId.1=i-1",
		"",
	} {
		form, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeEC2(form); err == nil {
			t.Errorf("%q decoded", q)
		} else if q != "Action=TerminateInstances&InstanceId.1=i-1" && !errors.Is(err, errBadParam) {
			t.Errorf("%q: %v is not a parameter error", q, err)
		}
	}
}

// FuzzDecodeEC2 checks that no request body makes the Query decoder panic
// and that what it accepts carries an SDK input.
func FuzzDecodeEC2(f *testing.F) {
	for _, s := range []string{
		"Action=DescribeRouteTables&Version=2016-11-15&RouteTableId.1=rtb-1&RouteTableId.2=rtb-2",
		"Action=DescribeRouteTables&Filter.1.Name=tag%3Aha&Filter.1.Value.1=pair1&Filter.2.Name=vpc-id&Filter.2.Value.1=vpc-1",
		"Action=ReplaceRoute&RouteTableId=rtb-1&DestinationCidrBlock=0.0.0.0%2F0&NetworkInterfaceId=eni-1",
		"Action=CreateRoute&RouteTableId=rtb-1&DestinationIpv6CidrBlock=%3A%3A%2F0&InstanceId=i-1",
		"Action=AssignPrivateIpAddresses&NetworkInterfaceId=eni-1&PrivateIpAddress.1=10.0.0.5&AllowReassignment=true",
		"Action=AssociateAddress&AllocationId=eipalloc-1&NetworkInterfaceId=eni-1&AllowReassociation=true",
		"Action=DescribeAddresses&PublicIp.1=203.0.113.7",
		"Action=DescribeNetworkInterfaces&NetworkInterfaceId.1=eni-1",
		"Action=DescribeRouteTables&RouteTableId.999999999999=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		req, err := decodeEC2(form)
		if err == nil && req.Input == nil {
			t.Fatalf("%q decoded without an input", body)
		}
	})
}
