package routes

import (
	"context"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/aws/awstest"
)

// TestMotoTakeoverAndGiveBack runs the AWS backend against a real
// moto_server: route tables by ID and by tag, replace to this node's ENI,
// read-back, capture and give-back. moto lacks the route.network-interface-id
// filter and does not enforce everything AWS does; those paths are covered
// by the awstest fake in aws_test.go.
func TestMotoTakeoverAndGiveBack(t *testing.T) {
	url := awstest.StartMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := awstest.MotoClient(url)
	p := awstest.BuildPair(ctx, t, c)

	mkTable := func(tag string, routes map[string]string) string {
		rt, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: awssdk.String(p.VPC), TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeRouteTable, Tags: []types.Tag{{Key: awssdk.String("ha"), Value: awssdk.String(tag)}},
		}}})
		if err != nil {
			t.Fatalf("CreateRouteTable: %v", err)
		}
		for dst, eni := range routes {
			if _, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTable.RouteTableId, DestinationCidrBlock: awssdk.String(dst), NetworkInterfaceId: awssdk.String(eni)}); err != nil {
				t.Fatalf("CreateRoute %s: %v", dst, err)
			}
		}
		return *rt.RouteTable.RouteTableId
	}
	// The peer (preferred node) holds the default routes; the secondary
	// (this node, "local") holds 10.99.0.0/16 of its own.
	t1 := mkTable("pair1", map[string]string{"0.0.0.0/0": p.PeerENI, "10.99.0.0/16": p.LocalENI})
	t2 := mkTable("pair1", map[string]string{"0.0.0.0/0": p.PeerENI, "172.16.0.0/12": p.PeerENI})
	t3 := mkTable("other", map[string]string{"0.0.0.0/0": p.PeerENI})

	target := func(table, dst string) string {
		out, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{table}})
		if err != nil {
			t.Fatalf("DescribeRouteTables: %v", err)
		}
		for _, r := range out.RouteTables[0].Routes {
			if awssdk.ToString(r.DestinationCidrBlock) == dst {
				return awssdk.ToString(r.NetworkInterfaceId)
			}
		}
		return ""
	}
	fk := clock.NewFake(epoch)

	// The preferred node captures its routes while active (tables by ID).
	prefCfg := Config{Cloud: "aws", StateDir: t.TempDir(), AWS: &AWS{Region: "us-east-1", TableIDs: []string{t1, t2}, LocalENI: p.PeerENI, PeerENI: p.LocalENI}}
	pref := newAWSReal(t, prefCfg, c, fk)
	if err := pref.Verify(ctx, true); err != nil {
		t.Fatalf("preferred Verify: %v", err)
	}
	if n := len(pref.Owned()); n != 3 {
		t.Fatalf("preferred node captured %d routes, want 3: %+v", n, pref.Owned())
	}

	// The secondary takes over every route of the peer, tables by tag.
	secCfg := Config{Cloud: "aws", StateDir: t.TempDir(), AWS: &AWS{Region: "us-east-1", Tags: map[string]string{"ha": "pair1"}, VPC: p.VPC, PeerTargets: true, PeerENI: p.PeerENI, LocalENI: p.LocalENI}}
	sec := newAWSReal(t, secCfg, c, fk)
	if err := sec.Activate(ctx, action.Takeover{Term: 2, Reason: "peer lost"}); err != nil {
		t.Fatalf("secondary Activate: %v", err)
	}
	for _, x := range []struct{ table, dst, want string }{
		{t1, "0.0.0.0/0", p.LocalENI}, {t2, "0.0.0.0/0", p.LocalENI}, {t2, "172.16.0.0/12", p.LocalENI},
		{t1, "10.99.0.0/16", p.LocalENI}, {t3, "0.0.0.0/0", p.PeerENI},
	} {
		if got := target(x.table, x.dst); got != x.want {
			t.Errorf("after takeover %s %s → %s, want %s", x.table, x.dst, got, x.want)
		}
	}
	if st := sec.Status(); len(st) != 3 {
		t.Errorf("secondary status %+v, want 3 routes", st)
	}

	// The preferred node comes back (new process) and takes back exactly
	// its captured routes; the secondary's own route stays.
	pref2 := newAWSReal(t, prefCfg, c, fk)
	if err := pref2.Activate(ctx, action.Takeover{Term: 3, Reason: "preempt"}); err != nil {
		t.Fatalf("give-back Activate: %v", err)
	}
	for _, x := range []struct{ table, dst, want string }{
		{t1, "0.0.0.0/0", p.PeerENI}, {t2, "0.0.0.0/0", p.PeerENI}, {t2, "172.16.0.0/12", p.PeerENI},
		{t1, "10.99.0.0/16", p.LocalENI},
	} {
		if got := target(x.table, x.dst); got != x.want {
			t.Errorf("after give-back %s %s → %s, want %s", x.table, x.dst, got, x.want)
		}
	}

	// Drift while the preferred node is active is repaired by Verify.
	if _, err := c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: awssdk.String(t2), DestinationCidrBlock: awssdk.String("0.0.0.0/0"), NetworkInterfaceId: awssdk.String(p.LocalENI)}); err != nil {
		t.Fatal(err)
	}
	if err := pref2.Verify(ctx, true); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := target(t2, "0.0.0.0/0"); got != p.PeerENI {
		t.Errorf("drift not repaired: %s", got)
	}

	// A table that does not exist is named in the error.
	bad := Config{Cloud: "aws", StateDir: t.TempDir(), AWS: &AWS{Region: "us-east-1", TableIDs: []string{"rtb-0123456789abcdef0"}, LocalENI: p.LocalENI}}
	if err := newAWSReal(t, bad, c, fk).Check(ctx); err == nil {
		t.Error("Check passed for a missing table")
	} else {
		t.Logf("missing table: %v", err)
	}
}

func newAWSReal(t *testing.T, cfg Config, c *ec2.Client, fk *clock.Fake) *Action {
	t.Helper()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config invalid: %v", errs)
	}
	opts := testOptions(t, fk, cfg.StateDir)
	opts.Backoff.Attempts = 1 // no waits on the fake clock against moto
	a, err := NewAWS(cfg, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
