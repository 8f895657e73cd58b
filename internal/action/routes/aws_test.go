package routes

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/aws/awstest"
)

const (
	localENI = "eni-0000000000000000a"
	peerENI  = "eni-0000000000000000b"
	otherENI = "eni-0000000000000000c"
	peerInst = "i-0000000000000000b"
	rtbA     = "rtb-000000000000000aa"
	rtbB     = "rtb-000000000000000bb"
	rtbC     = "rtb-000000000000000cc"
)

func awsCfg(dir string, mod func(*AWS)) Config {
	c := Config{Cloud: "aws", StateDir: dir, AWS: &AWS{
		Region: "us-east-1", TableIDs: []string{rtbA, rtbB}, PeerTargets: true,
		PeerENI: peerENI, PeerInstance: peerInst, LocalENI: localENI,
	}}
	if mod != nil {
		mod(c.AWS)
	}
	return c
}

func newAWS(t *testing.T, cfg Config, api *awstest.Fake, fk *clock.Fake) *Action {
	t.Helper()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config invalid: %v", errs)
	}
	a, err := NewAWS(cfg, api, testOptions(t, fk, cfg.StateDir))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func standardFake() *awstest.Fake {
	f := awstest.New()
	f.AddENI(localENI, "10.0.1.10")
	f.AddENI(peerENI, "10.0.2.10")
	f.AddTable(rtbA, "vpc-00000001", map[string]string{"ha": "pair1"}, map[string]string{
		"0.0.0.0/0":    peerENI,
		"10.10.0.0/16": peerInst, // a route via the peer's instance ID
		"10.20.0.0/16": otherENI, // someone else's appliance
		"10.0.0.0/16":  "local",
		"192.0.2.0/24": "igw-00000001",
	})
	f.AddTable(rtbB, "vpc-00000001", map[string]string{"ha": "pair1"}, map[string]string{
		"0.0.0.0/0": peerENI,
	})
	f.AddTable(rtbC, "vpc-00000001", nil, map[string]string{"0.0.0.0/0": peerENI})
	return f
}

func TestAWSPeerTargetsTakeover(t *testing.T) {
	dir := t.TempDir()
	fk := clock.NewFake(epoch)
	f := standardFake()
	a := newAWS(t, awsCfg(dir, nil), f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	for _, c := range []struct{ table, dst, want string }{
		{rtbA, "0.0.0.0/0", localENI},
		{rtbA, "10.10.0.0/16", localENI},
		{rtbA, "10.20.0.0/16", otherENI}, // never owned: untouched
		{rtbA, "192.0.2.0/24", "igw-00000001"},
		{rtbB, "0.0.0.0/0", localENI},
		{rtbC, "0.0.0.0/0", peerENI}, // table out of scope
	} {
		if got := f.Target(c.table, c.dst); got != c.want {
			t.Errorf("%s %s → %s, want %s", c.table, c.dst, got, c.want)
		}
	}
	st := a.Status()
	if len(st) != 3 {
		t.Fatalf("status has %d routes, want 3: %+v", len(st), st)
	}
	for _, s := range st {
		if s.Err != nil || s.Attempts != 1 || s.Started != epoch || s.Repair {
			t.Errorf("status %+v", s)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, CaptureFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"table": "` + rtbA, `"destination": "10.10.0.0/16"`, `"cloud": "aws"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("capture lacks %s:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "10.20.0.0/16") {
		t.Errorf("capture holds a route baton never owned:\n%s", data)
	}
	// A second Activate is idempotent: reads only.
	before := len(f.Calls())
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Calls()[before:] {
		if c != "DescribeRouteTables" {
			t.Errorf("idempotent Activate called %s", c)
		}
	}
}

func TestAWSTagDiscoveryAndDestinations(t *testing.T) {
	dir := t.TempDir()
	fk := clock.NewFake(epoch)
	f := standardFake()
	cfg := awsCfg(dir, func(c *AWS) {
		c.TableIDs = nil
		c.Tags = map[string]string{"ha": "pair1"}
		c.VPC = "vpc-00000001"
		c.PeerTargets = false
		c.Destinations = []string{"10.20.0.0/16", "172.16.0.0/12"}
		c.CreateMissing = true
	})
	a := newAWS(t, cfg, f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if got := f.Target(rtbA, "10.20.0.0/16"); got != localENI {
		t.Errorf("listed destination → %s", got)
	}
	if got := f.Target(rtbA, "0.0.0.0/0"); got != peerENI {
		t.Errorf("unlisted peer route moved without peer_targets: %s", got)
	}
	for _, tb := range []string{rtbA, rtbB} {
		if got := f.Target(tb, "172.16.0.0/12"); got != localENI {
			t.Errorf("%s: missing destination not created: %q", tb, got)
		}
	}
	if got := f.Target(rtbC, "172.16.0.0/12"); got != "" {
		t.Errorf("untagged table changed")
	}
}

func TestAWSMissingDestinationWithoutCreate(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	a := newAWS(t, awsCfg(t.TempDir(), func(c *AWS) { c.Destinations = []string{"172.16.0.0/12"} }), f, fk)
	err := activate(t, fk, a)
	if err == nil || !strings.Contains(err.Error(), "172.16.0.0/12") || !strings.Contains(err.Error(), "create_missing") {
		t.Fatalf("Activate error = %v, want one naming the destination and create_missing", err)
	}
	if f.Target(rtbA, "0.0.0.0/0") != localENI {
		t.Error("present routes should still move")
	}
}

func TestAWSGiveBack(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := awstest.New()
	const secENI, secOwn = peerENI, "10.99.0.0/16"
	f.AddTable(rtbA, "vpc-00000001", nil, map[string]string{
		"0.0.0.0/0":    localENI, // the preferred node holds these
		"10.10.0.0/16": localENI,
		secOwn:         secENI, // the secondary's own route, always on it
	})
	// Preferred node: capture only (no destinations, no peer targets).
	pCfg := awsCfg(t.TempDir(), func(c *AWS) { c.TableIDs = []string{rtbA}; c.PeerTargets = false })
	p := newAWS(t, pCfg, f, fk)
	if err := verify(t, fk, p); err != nil {
		t.Fatal(err)
	}
	if got := len(p.Owned()); got != 2 {
		t.Fatalf("preferred node captured %d routes, want 2: %+v", got, p.Owned())
	}
	// The preferred node fails; the secondary takes every route of the peer.
	sCfg := awsCfg(t.TempDir(), func(c *AWS) {
		c.TableIDs = []string{rtbA}
		c.LocalENI, c.PeerENI, c.PeerInstance = secENI, localENI, ""
	})
	s := newAWS(t, sCfg, f, fk)
	if err := activate(t, fk, s); err != nil {
		t.Fatal(err)
	}
	if f.Target(rtbA, "0.0.0.0/0") != secENI || f.Target(rtbA, "10.10.0.0/16") != secENI {
		t.Fatal("secondary did not take over")
	}
	// The preferred node returns (a new process: it loads its capture).
	p2 := newAWS(t, pCfg, f, fk)
	if err := activate(t, fk, p2); err != nil {
		t.Fatal(err)
	}
	if f.Target(rtbA, "0.0.0.0/0") != localENI || f.Target(rtbA, "10.10.0.0/16") != localENI {
		t.Error("captured routes not given back")
	}
	if got := f.Target(rtbA, secOwn); got != secENI {
		t.Errorf("route the preferred node never owned moved to %s", got)
	}
}

func TestAWSThrottlingRetriedWithBackoff(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	var n atomic.Int32
	f.SetFault(func(op string, in any) error {
		if op == "ReplaceRoute" && n.Add(1) <= 2 {
			return awstest.APIError("RequestLimitExceeded", "Request limit exceeded.")
		}
		return nil
	})
	a := newAWS(t, awsCfg(t.TempDir(), func(c *AWS) { c.TableIDs = []string{rtbB} }), f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	st := a.Status()
	if len(st) != 1 || st[0].Attempts != 3 || st[0].Err != nil {
		t.Fatalf("status %+v, want one route after 3 attempts", st)
	}
	// Waits of 100ms then 200ms (jitter = ceiling) passed on the fake clock.
	if el := fk.Now().Sub(epoch); el < 300*time.Millisecond {
		t.Errorf("fake clock advanced %s, want at least 300ms of backoff", el)
	}
	if st[0].Duration < 300*time.Millisecond {
		t.Errorf("recorded duration %s ignores the backoff", st[0].Duration)
	}
}

func TestAWSRetryAfterHonoured(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	var n atomic.Int32
	f.SetFault(func(op string, in any) error {
		if op == "ReplaceRoute" && n.Add(1) == 1 {
			resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": []string{"7"}}}
			return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: errors.New("slow down")}
		}
		return nil
	})
	a := newAWS(t, awsCfg(t.TempDir(), func(c *AWS) { c.TableIDs = []string{rtbB} }), f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	if el := fk.Now().Sub(epoch); el < 7*time.Second {
		t.Errorf("waited %s, want at least the 7s Retry-After", el)
	}
}

func TestAWSOneTableFailingOthersSwitch(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	// rtbB answers 5xx for 6 calls: more than one round's 4 attempts, so the
	// route is retried in a second round after its read-back.
	var n atomic.Int32
	f.SetFault(func(op string, in any) error {
		if r, ok := in.(*ec2.ReplaceRouteInput); ok && *r.RouteTableId == rtbB && n.Add(1) <= 6 {
			return awstest.APIError("InternalError", "An internal error has occurred")
		}
		return nil
	})
	a := newAWS(t, awsCfg(t.TempDir(), nil), f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if f.Target(rtbA, "0.0.0.0/0") != localENI || f.Target(rtbB, "0.0.0.0/0") != localENI {
		t.Fatal("not every table switched")
	}
	for _, s := range a.Status() {
		if s.Table == rtbB && s.Attempts != 7 {
			t.Errorf("rtbB route took %d attempts, want 7", s.Attempts)
		}
	}
}

func TestAWSPermissionDeniedNamesTableAndPermission(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	f.SetFault(func(op string, in any) error {
		if r, ok := in.(*ec2.ReplaceRouteInput); ok && *r.RouteTableId == rtbB {
			return awstest.APIError("UnauthorizedOperation", "You are not authorized to perform this operation.")
		}
		return nil
	})
	a := newAWS(t, awsCfg(t.TempDir(), nil), f, fk)
	err := activate(t, fk, a)
	if err == nil || !strings.Contains(err.Error(), "ec2:ReplaceRoute") || !strings.Contains(err.Error(), rtbB) {
		t.Fatalf("error = %v, want one naming ec2:ReplaceRoute and %s", err, rtbB)
	}
	if f.Target(rtbA, "0.0.0.0/0") != localENI {
		t.Error("the healthy table did not switch")
	}
	var replaces int
	for _, c := range f.Calls() {
		if c == "ReplaceRoute" {
			replaces++
		}
	}
	if replaces != 3 { // 2 routes in rtbA + 1 denied call, never retried
		t.Errorf("%d ReplaceRoute calls, want 3 (denied is final)", replaces)
	}
}

func TestAWSMissingTable(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	const ghost = "rtb-0000000000000dead"
	a := newAWS(t, awsCfg(t.TempDir(), func(c *AWS) { c.TableIDs = []string{rtbA, ghost} }), f, fk)
	err := drive(t, fk, func() error { return a.Check(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), ghost) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Check error = %v, want one naming %s", err, ghost)
	}
}

func TestAWSAttemptTimeoutRetried(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	var n atomic.Int32
	f.SetFault(func(op string, in any) error {
		if op == "ReplaceRoute" && n.Add(1) == 1 {
			return context.DeadlineExceeded // a call that hung past its attempt deadline
		}
		return nil
	})
	a := newAWS(t, awsCfg(t.TempDir(), func(c *AWS) { c.TableIDs = []string{rtbB} }), f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	if f.Target(rtbB, "0.0.0.0/0") != localENI {
		t.Fatal("route not moved after a timeout")
	}
}

func TestAWSReadbackMismatchRetried(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	// The first ReplaceRoute "succeeds" but another writer puts the route
	// back on the peer before the read-back (lost update).
	var n atomic.Int32
	f.SetFault(func(op string, in any) error {
		if op == "DescribeRouteTables" && n.Load() == 1 {
			n.Add(1)
			f.SetTarget(rtbB, "0.0.0.0/0", peerENI)
		}
		if op == "ReplaceRoute" && n.Load() == 0 {
			n.Add(1)
		}
		return nil
	})
	a := newAWS(t, awsCfg(t.TempDir(), func(c *AWS) { c.TableIDs = []string{rtbB} }), f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	if f.Target(rtbB, "0.0.0.0/0") != localENI {
		t.Fatal("read-back mismatch not repaired")
	}
	if st := a.Status(); st[0].Attempts != 2 {
		t.Errorf("attempts %d, want 2", st[0].Attempts)
	}
}

func TestAWSRestartMidTakeover(t *testing.T) {
	dir := t.TempDir()
	fk := clock.NewFake(epoch)
	f := standardFake()
	// The process "dies" while changing rtbB: every call fails with a final
	// error, as if the process lost its credentials mid-way.
	f.SetFault(func(op string, in any) error {
		if r, ok := in.(*ec2.ReplaceRouteInput); ok && *r.RouteTableId == rtbB {
			return errors.New("process killed")
		}
		return nil
	})
	cfg := awsCfg(dir, nil)
	a := newAWS(t, cfg, f, fk)
	if err := activate(t, fk, a); err == nil {
		t.Fatal("first Activate should fail on rtbB")
	}
	if f.Target(rtbB, "0.0.0.0/0") != peerENI {
		t.Fatal("setup: rtbB should still point at the peer")
	}
	// The intent was persisted before the change: rtbB's route is owned.
	owned := a.Owned()
	if len(owned) != 3 {
		t.Fatalf("owned %+v, want 3 routes", owned)
	}
	// The restarted process runs in capture-only mode (as the preferred node
	// does) and still converges from the persisted capture alone.
	f.SetFault(nil)
	cfg.AWS.PeerTargets = false
	b := newAWS(t, cfg, f, fk)
	if err := activate(t, fk, b); err != nil {
		t.Fatal(err)
	}
	if f.Target(rtbB, "0.0.0.0/0") != localENI || f.Target(rtbA, "10.10.0.0/16") != localENI {
		t.Fatal("restarted action did not converge")
	}
}

func TestAWSVerifyRepairsDrift(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	a := newAWS(t, awsCfg(t.TempDir(), func(c *AWS) { c.PeerTargets = false; c.Destinations = []string{"0.0.0.0/0"} }), f, fk)
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	f.SetTarget(rtbA, "0.0.0.0/0", otherENI)
	before := len(f.Calls())
	if err := a.Verify(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if len(f.Calls()) != before {
		t.Error("Verify(standby) called the cloud")
	}
	if err := verify(t, fk, a); err != nil {
		t.Fatal(err)
	}
	if f.Target(rtbA, "0.0.0.0/0") != localENI {
		t.Fatal("drift not repaired")
	}
	var repaired bool
	for _, s := range a.Status() {
		repaired = repaired || (s.Table == rtbA && s.Repair && s.From == otherENI)
	}
	if !repaired {
		t.Errorf("status does not record the repair: %+v", a.Status())
	}
}

func TestAWSObserve(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	var seen atomic.Int32
	opts := testOptions(t, fk, t.TempDir())
	opts.Observe = func(s RouteStatus) { seen.Add(1) }
	a, err := NewAWS(awsCfg(opts.StateDir, nil), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := activate(t, fk, a); err != nil {
		t.Fatal(err)
	}
	if seen.Load() != 3 {
		t.Errorf("observed %d changes, want 3", seen.Load())
	}
}

func TestAWSReportsEachTableAsAPart(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	// rtbB is throttled twice (retried); rtbC cannot be read (fails).
	var n atomic.Int32
	f.SetFault(func(op string, in any) error {
		if r, ok := in.(*ec2.ReplaceRouteInput); ok && *r.RouteTableId == rtbB && n.Add(1) <= 2 {
			return awstest.APIError("RequestLimitExceeded", "Request limit exceeded.")
		}
		if r, ok := in.(*ec2.DescribeRouteTablesInput); ok && len(r.RouteTableIds) == 1 && r.RouteTableIds[0] == rtbC {
			return awstest.APIError("UnauthorizedOperation", "not allowed")
		}
		if r, ok := in.(*ec2.DescribeRouteTablesInput); ok && len(r.RouteTableIds) > 1 {
			return awstest.APIError("UnauthorizedOperation", "not allowed") // batch fails: per table
		}
		return nil
	})
	a := newAWS(t, awsCfg(t.TempDir(), func(c *AWS) { c.TableIDs = []string{rtbA, rtbB, rtbC} }), f, fk)
	ctx, parts := action.CollectParts(context.Background())
	err := drive(t, fk, func() error { return a.Activate(ctx, action.Takeover{Term: 1, Reason: "test"}) })
	if err == nil || !strings.Contains(err.Error(), rtbC) {
		t.Fatalf("Activate: %v, want rtbC's error", err)
	}
	got := map[string]action.Part{}
	for _, p := range parts() {
		got[p.Target] = p
	}
	if len(got) != 3 {
		t.Fatalf("parts %+v, want one per table", parts())
	}
	if p := got[rtbA+" (2 routes)"]; !p.OK || p.Attempts != 1 || p.Duration <= 0 {
		t.Errorf("rtbA part %+v", p)
	}
	if p := got[rtbB+" (1 route)"]; !p.OK || p.Attempts != 3 {
		t.Errorf("rtbB part %+v, want ok after 3 attempts", p)
	}
	if p := got[rtbC+" (0 routes)"]; p.OK || !strings.Contains(p.Error, "not allowed") {
		t.Errorf("rtbC part %+v, want its read error", p)
	}
}
