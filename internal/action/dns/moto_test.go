package dns

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/aws/awstest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func motoRoute53(t *testing.T) (*route53.Client, string) {
	url := awstest.StartMoto(t)
	c := route53.New(route53.Options{Region: "us-east-1", BaseEndpoint: awssdk.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), RetryMaxAttempts: 1})
	z, err := c.CreateHostedZone(context.Background(), &route53.CreateHostedZoneInput{Name: awssdk.String("example.com"), CallerReference: awssdk.String("baton-test")})
	if err != nil {
		t.Fatalf("CreateHostedZone: %v", err)
	}
	id := awssdk.ToString(z.HostedZone.Id)
	if i := len("/hostedzone/"); len(id) > i && id[:i] == "/hostedzone/" {
		id = id[i:]
	}
	return c, id
}

func awsConfig(zone string, addrs ...string) Config {
	c := Config{Cloud: "aws", Name: "fw.example.com", Addresses: addrs, AWS: &AWS{ZoneID: zone}}
	c.SetDefaults()
	c.TTL = 30
	return c
}

func lookup(t *testing.T, c *route53.Client, zone, name string, typ types.RRType) []string {
	t.Helper()
	out, err := c.ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: awssdk.String(zone)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.ResourceRecordSets {
		if fqdn(awssdk.ToString(s.Name)) == fqdn(name) && s.Type == typ {
			return values(s)
		}
	}
	return nil
}

// Against moto's Route 53: the active writes A, AAAA and the fence in one
// batch and waits INSYNC; drift is repaired; the peer taking over with a
// newer token wins, and the old active's repair is refused as stale.
func TestRoute53TakeoverRepairAndFence(t *testing.T) {
	c, zone := motoRoute53(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clk := clock.Real{}
	a, err := New(ctx, awsConfig(zone, "10.0.1.10", "fd00::10"), Options{Node: "nva-a", Logger: quiet(), Clock: clk, Route53: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Activate(ctx, action.Takeover{Term: 1, Token: 5}); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if got := lookup(t, c, zone, "fw.example.com", types.RRTypeA); len(got) != 1 || got[0] != "10.0.1.10" {
		t.Fatalf("A = %v", got)
	}
	if got := lookup(t, c, zone, "fw.example.com", types.RRTypeAaaa); len(got) != 1 || got[0] != "fd00::10" {
		t.Fatalf("AAAA = %v", got)
	}
	if got := lookup(t, c, zone, "_baton.fw.example.com", types.RRTypeTxt); len(got) != 1 || got[0] != `"baton node=nva-a token=5"` {
		t.Fatalf("fence = %v", got)
	}
	writes := a.Status().Writes
	if err := a.Verify(ctx, true); err != nil || a.Status().Writes != writes {
		t.Fatalf("Verify of a correct record wrote (%v, %d writes)", err, a.Status().Writes)
	}

	// Someone points the name elsewhere: the reconcile repairs it.
	if _, err := c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: awssdk.String(zone), ChangeBatch: &types.ChangeBatch{
		Changes: []types.Change{{Action: types.ChangeActionUpsert, ResourceRecordSet: &types.ResourceRecordSet{Name: awssdk.String("fw.example.com."), Type: types.RRTypeA,
			TTL: awssdk.Int64(30), ResourceRecords: []types.ResourceRecord{{Value: awssdk.String("192.0.2.1")}}}}}}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(ctx, true); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := lookup(t, c, zone, "fw.example.com", types.RRTypeA); len(got) != 1 || got[0] != "10.0.1.10" {
		t.Fatalf("after repair A = %v", got)
	}

	// The peer takes over with a newer token.
	b, err := New(ctx, awsConfig(zone, "10.0.2.10"), Options{Node: "nva-b", Logger: quiet(), Clock: clk, Route53: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Activate(ctx, action.Takeover{Term: 2, Token: 6}); err != nil {
		t.Fatalf("peer Activate: %v", err)
	}
	if got := lookup(t, c, zone, "fw.example.com", types.RRTypeA); len(got) != 1 || got[0] != "10.0.2.10" {
		t.Fatalf("after the peer's takeover A = %v", got)
	}
	err = a.Verify(ctx, true)
	if !errors.Is(err, ErrStale) || !errors.Is(err, action.ErrFault) {
		t.Fatalf("stale Verify: %v, want ErrStale as a fault", err)
	}
	if got := lookup(t, c, zone, "fw.example.com", types.RRTypeA); got[0] != "10.0.2.10" {
		t.Fatalf("the stale node overwrote: A = %v", got)
	}
	// A failback (a newer token again) works.
	if err := a.Activate(ctx, action.Takeover{Term: 3, Token: 7}); err != nil {
		t.Fatalf("failback: %v", err)
	}
	if got := lookup(t, c, zone, "fw.example.com", types.RRTypeA); len(got) != 1 || got[0] != "10.0.1.10" {
		t.Fatalf("after failback A = %v", got)
	}
}

// A weighted member: the record set carries this node's set identifier
// and weight.
func TestRoute53WeightedMember(t *testing.T) {
	c, zone := motoRoute53(t)
	ctx := context.Background()
	cfg := awsConfig(zone, "10.0.1.10")
	cfg.AWS.SetIdentifier, cfg.AWS.Weight = "nva-a", awssdk.Int64(100)
	a, err := New(ctx, cfg, Options{Node: "nva-a", Logger: quiet(), Route53: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Activate(ctx, action.Takeover{Term: 1}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: awssdk.String(zone)})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range out.ResourceRecordSets {
		if s.Type == types.RRTypeA && awssdk.ToString(s.SetIdentifier) == "nva-a" && awssdk.ToInt64(s.Weight) == 100 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no weighted A record for nva-a in %+v", out.ResourceRecordSets)
	}
	if err := a.Verify(ctx, true); err != nil || a.Status().Writes != 1 {
		t.Fatalf("Verify rewrote a correct weighted record: %v, %d writes", err, a.Status().Writes)
	}
}
