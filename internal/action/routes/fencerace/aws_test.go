package fencerace

import (
	"context"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/batonha/baton/internal/provider/aws/awstest"
)

// TestAWSNewerTokenWinsEveryInterleaving races the two writers on moto.
func TestAWSNewerTokenWinsEveryInterleaving(t *testing.T) {
	url := awstest.StartMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := awstest.MotoClient(url)
	p := awstest.BuildPair(ctx, t, c)
	dests := []string{"0.0.0.0/0", "172.16.0.0/12"}
	var tables []string
	for range 2 {
		rt, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: awssdk.String(p.VPC)})
		if err != nil {
			t.Fatalf("CreateRouteTable: %v", err)
		}
		for _, d := range dests {
			if _, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTable.RouteTableId, DestinationCidrBlock: awssdk.String(d), NetworkInterfaceId: awssdk.String(p.PeerENI)}); err != nil {
				t.Fatalf("CreateRoute %s: %v", d, err)
			}
		}
		tables = append(tables, *rt.RouteTable.RouteTableId)
	}
	rep, err := Sweep(ctx, AWS(c, tables, dests, p.LocalENI, p.PeerENI, t.TempDir()), 5, 6)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refused != rep.Cases || rep.Cases < 10 {
		t.Fatalf("report %+v: want every one of at least 10 interleavings refused", rep)
	}
	t.Logf("%d interleavings, the newer token won each", rep.Cases)
}
