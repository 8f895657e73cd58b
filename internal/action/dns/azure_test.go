package dns

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/dns/armdns"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/dns/armdns/fake"

	"github.com/batonha/baton/internal/action"
)

// zone is an Azure DNS zone behind the SDK's fake transport, with ETags
// and the If-Match / If-None-Match preconditions the service enforces.
type zone struct {
	mu    sync.Mutex
	sets  map[string]armdns.RecordSet // "rel/TYPE"
	etag  int
	calls int
}

func (z *zone) server() *fake.RecordSetsServer {
	return &fake.RecordSetsServer{
		Get: func(_ context.Context, rg, zn, rel string, t armdns.RecordType, _ *armdns.RecordSetsClientGetOptions) (azfake.Responder[armdns.RecordSetsClientGetResponse], azfake.ErrorResponder) {
			var resp azfake.Responder[armdns.RecordSetsClientGetResponse]
			var errResp azfake.ErrorResponder
			z.mu.Lock()
			defer z.mu.Unlock()
			z.calls++
			rs, ok := z.sets[rel+"/"+string(t)]
			if !ok {
				errResp.SetResponseError(http.StatusNotFound, "NotFound")
				return resp, errResp
			}
			resp.SetResponse(http.StatusOK, armdns.RecordSetsClientGetResponse{RecordSet: rs}, nil)
			return resp, errResp
		},
		CreateOrUpdate: func(_ context.Context, rg, zn, rel string, t armdns.RecordType, p armdns.RecordSet, o *armdns.RecordSetsClientCreateOrUpdateOptions) (azfake.Responder[armdns.RecordSetsClientCreateOrUpdateResponse], azfake.ErrorResponder) {
			var resp azfake.Responder[armdns.RecordSetsClientCreateOrUpdateResponse]
			var errResp azfake.ErrorResponder
			z.mu.Lock()
			defer z.mu.Unlock()
			z.calls++
			key := rel + "/" + string(t)
			cur, exists := z.sets[key]
			if o != nil && o.IfMatch != nil && (!exists || *cur.Etag != *o.IfMatch) {
				errResp.SetResponseError(http.StatusPreconditionFailed, "PreconditionFailed")
				return resp, errResp
			}
			if o != nil && o.IfNoneMatch != nil && exists {
				errResp.SetResponseError(http.StatusPreconditionFailed, "PreconditionFailed")
				return resp, errResp
			}
			z.etag++
			p.Etag = new(strconv.Itoa(z.etag))
			z.sets[key] = p
			resp.SetResponse(http.StatusOK, armdns.RecordSetsClientCreateOrUpdateResponse{RecordSet: p}, nil)
			return resp, errResp
		},
	}
}

func (z *zone) a(rel string) []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []string
	if rs, ok := z.sets[rel+"/A"]; ok {
		for _, r := range rs.Properties.ARecords {
			out = append(out, *r.IPv4Address)
		}
	}
	return out
}

func azureAction(t *testing.T, z *zone, node string, addrs ...string) *Action {
	t.Helper()
	cfg := Config{Cloud: "azure", Name: "fw.example.com", Addresses: addrs,
		Azure: &Azure{SubscriptionID: "00000000-0000-0000-0000-000000000000", ResourceGroup: "rg", Zone: "example.com"}}
	cfg.SetDefaults()
	var problems []string
	cfg.Check(func(k, m string) { problems = append(problems, k+": "+m) })
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	c, err := NewRecordSetsClient(cfg.Azure, &azfake.TokenCredential{}, fake.NewRecordSetsServerTransport(z.server()))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, Options{Node: node, Logger: quiet(), RecordSets: c})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAzureDNSTakeoverRepairAndFence(t *testing.T) {
	z := &zone{sets: map[string]armdns.RecordSet{}}
	ctx := context.Background()
	a := azureAction(t, z, "nva-a", "10.0.1.10")
	if err := a.Activate(ctx, action.Takeover{Term: 1, Token: 5}); err != nil {
		t.Fatal(err)
	}
	if got := z.a("fw"); len(got) != 1 || got[0] != "10.0.1.10" {
		t.Fatalf("A = %v", got)
	}
	if ttl := *z.sets["fw/A"].Properties.TTL; ttl != 60 {
		t.Fatalf("TTL %d, want 60", ttl)
	}
	fence := z.sets["_baton.fw/TXT"].Properties.TxtRecords[0].Value[0]
	if *fence != "baton node=nva-a token=5" {
		t.Fatalf("fence %q", *fence)
	}
	calls := z.calls
	if err := a.Verify(ctx, true); err != nil || z.calls != calls+3 {
		t.Fatalf("Verify of a correct record: %v, %d calls (want 3 reads)", err, z.calls-calls)
	}
	// Drift is repaired.
	z.sets["fw/A"] = armdns.RecordSet{Etag: new("x"), Properties: &armdns.RecordSetProperties{ARecords: []*armdns.ARecord{{IPv4Address: new("192.0.2.1")}}}}
	if err := a.Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := z.a("fw"); got[0] != "10.0.1.10" {
		t.Fatalf("after repair A = %v", got)
	}
	// The peer takes over with a newer token; the old active is stale.
	b := azureAction(t, z, "nva-b", "10.0.2.10")
	if err := b.Activate(ctx, action.Takeover{Term: 2, Token: 6}); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(ctx, true); !errors.Is(err, ErrStale) || !errors.Is(err, action.ErrFault) {
		t.Fatalf("stale Verify: %v", err)
	}
	if got := z.a("fw"); got[0] != "10.0.2.10" {
		t.Fatalf("the stale node overwrote: %v", got)
	}
}

// A writer that comes between the read and the write loses on the
// fence's ETag and changes nothing.
func TestAzureDNSConcurrentWriterLoses(t *testing.T) {
	z := &zone{sets: map[string]armdns.RecordSet{}}
	ctx := context.Background()
	a := azureAction(t, z, "nva-a", "10.0.1.10")
	if err := a.Activate(ctx, action.Takeover{Term: 1, Token: 5}); err != nil {
		t.Fatal(err)
	}
	cur, err := a.b.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := azureAction(t, z, "nva-b", "10.0.2.10")
	if err := b.Activate(ctx, action.Takeover{Term: 2, Token: 6}); err != nil {
		t.Fatal(err)
	}
	want := a.want
	want.Token = 5
	if err := a.b.write(ctx, cur, want); err == nil {
		t.Fatal("a write under a changed fence succeeded")
	}
	if got := z.a("fw"); got[0] != "10.0.2.10" {
		t.Fatalf("A = %v", got)
	}
}

func TestConfigCheck(t *testing.T) {
	c := Config{Cloud: "aws", Name: "bad..name", Addresses: []string{"x"}, AWS: &AWS{ZoneID: "nope", SetIdentifier: "a", Failover: "BOTH"}}
	c.SetDefaults()
	c.TTL = 0
	got := map[string]bool{}
	c.Check(func(k, m string) { got[k] = true })
	for _, k := range []string{"name", "addresses[0]", "ttl", "aws.zone_id", "aws.failover"} {
		if !got[k] {
			t.Errorf("no problem reported for %s (got %v)", k, got)
		}
	}
	z := Config{Cloud: "azure", Name: "fw.other.org", Addresses: []string{"10.0.0.1"}, Azure: &Azure{SubscriptionID: "s", ResourceGroup: "rg", Zone: "example.com"}}
	z.SetDefaults()
	got = map[string]bool{}
	z.Check(func(k, m string) { got[k] = true })
	if !got["name"] || len(got) != 1 {
		t.Errorf("a name outside the zone: %v", got)
	}
}

func TestFenceValueRoundTrip(t *testing.T) {
	n, tok, ok := parseFence(`"` + fenceValue("nva-a", 42) + `"`)
	if !ok || n != "nva-a" || tok != 42 {
		t.Fatalf("%q %d %v", n, tok, ok)
	}
	for _, bad := range []string{"", "baton", "baton node=a token=x", "other node=a token=1", "baton node=a token=1 extra"} {
		if _, _, ok := parseFence(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseFence(f *testing.F) {
	f.Add(fenceValue("nva-a", 7))
	f.Add(`"baton node= token=18446744073709551615"`)
	f.Fuzz(func(t *testing.T, s string) {
		n, tok, ok := parseFence(s)
		if !ok {
			return
		}
		if n2, tok2, ok2 := parseFence(fenceValue(n, tok)); !ok2 || tok2 != tok || (n2 != n && n != "") {
			t.Fatalf("%q: round trip %q %d %v", s, n2, tok2, ok2)
		}
	})
}
