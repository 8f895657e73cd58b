package dns

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/dns/armdns"
)

// RecordSetsAPI is the part of the Azure DNS record sets client the
// action uses.
type RecordSetsAPI interface {
	Get(ctx context.Context, rg, zone, rel string, t armdns.RecordType, o *armdns.RecordSetsClientGetOptions) (armdns.RecordSetsClientGetResponse, error)
	CreateOrUpdate(ctx context.Context, rg, zone, rel string, t armdns.RecordType, rs armdns.RecordSet, o *armdns.RecordSetsClientCreateOrUpdateOptions) (armdns.RecordSetsClientCreateOrUpdateResponse, error)
}

type azureBackend struct {
	api       RecordSetsAPI
	cfg       Config
	rel       string // the name relative to the zone
	fenceRel  string
	fenceETag *string // of the fence record last read
}

// NewRecordSetsClient builds the Azure DNS client from the default
// credential chain; transport (tests: armdns/fake) may be nil.
func NewRecordSetsClient(z *Azure, cred azcore.TokenCredential, transport policy.Transporter) (*armdns.RecordSetsClient, error) {
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("creating Azure default credential: %w", err)
		}
		cred = c
	}
	opts := &arm.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: transport}}
	if z.Endpoint != "" {
		opts.Cloud = cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Audience: z.Endpoint, Endpoint: z.Endpoint},
		}}
		opts.InsecureAllowCredentialWithHTTP = true
	}
	return armdns.NewRecordSetsClient(z.SubscriptionID, cred, opts)
}

func newAzureDNS(cfg Config, opt Options) (*azureBackend, error) {
	rel, ok := relative(cfg.Name, cfg.Azure.Zone)
	if !ok {
		return nil, fmt.Errorf("dns.name: %q is not inside the zone %q", cfg.Name, cfg.Azure.Zone)
	}
	api := opt.RecordSets
	if api == nil {
		c, err := NewRecordSetsClient(cfg.Azure, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("creating the Azure DNS client: %w", err)
		}
		api = c
	}
	fenceRel := "_baton." + rel
	if rel == "@" {
		fenceRel = "_baton"
	}
	return &azureBackend{api: api, cfg: cfg, rel: rel, fenceRel: fenceRel}, nil
}

func (b *azureBackend) describe() string { return "Azure DNS zone " + b.cfg.Azure.Zone }

func notFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func (b *azureBackend) get(ctx context.Context, rel string, t armdns.RecordType) (*armdns.RecordSet, error) {
	r, err := b.api.Get(ctx, b.cfg.Azure.ResourceGroup, b.cfg.Azure.Zone, rel, t, nil)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r.RecordSet, nil
}

func (b *azureBackend) read(ctx context.Context) (record, error) {
	var r record
	a, err := b.get(ctx, b.rel, armdns.RecordTypeA)
	if err != nil {
		return r, err
	}
	if a != nil && a.Properties != nil {
		for _, x := range a.Properties.ARecords {
			if x != nil && x.IPv4Address != nil {
				r.V4 = append(r.V4, *x.IPv4Address)
			}
		}
	}
	aaaa, err := b.get(ctx, b.rel, armdns.RecordTypeAAAA)
	if err != nil {
		return r, err
	}
	if aaaa != nil && aaaa.Properties != nil {
		for _, x := range aaaa.Properties.AaaaRecords {
			if x != nil && x.IPv6Address != nil {
				r.V6 = append(r.V6, *x.IPv6Address)
			}
		}
	}
	slices.Sort(r.V4)
	slices.Sort(r.V6)
	txt, err := b.get(ctx, b.fenceRel, armdns.RecordTypeTXT)
	if err != nil {
		return r, err
	}
	b.fenceETag = nil
	if txt != nil && txt.Properties != nil {
		b.fenceETag = txt.Etag
		for _, x := range txt.Properties.TxtRecords {
			if x == nil {
				continue
			}
			var parts []string
			for _, v := range x.Value {
				if v != nil {
					parts = append(parts, *v)
				}
			}
			if n, tok, ok := parseFence(strings.Join(parts, "")); ok {
				r.Node, r.Token, r.found = n, tok, true
			}
		}
	}
	return r, nil
}

// write records the fence first, conditional on the fence read (If-Match
// its ETag, or If-None-Match * when there was none) so that a writer that
// came between makes this one fail, then the addresses.
func (b *azureBackend) write(ctx context.Context, prev, want record) error {
	z := b.cfg.Azure
	ttl := b.cfg.TTL
	val := fenceValue(want.Node, want.Token)
	opts := &armdns.RecordSetsClientCreateOrUpdateOptions{}
	if b.fenceETag != nil {
		opts.IfMatch = b.fenceETag
	} else if !prev.found {
		opts.IfNoneMatch = new("*")
	}
	if _, err := b.api.CreateOrUpdate(ctx, z.ResourceGroup, z.Zone, b.fenceRel, armdns.RecordTypeTXT, armdns.RecordSet{
		Properties: &armdns.RecordSetProperties{TTL: &ttl, TxtRecords: []*armdns.TxtRecord{{Value: []*string{&val}}}},
	}, opts); err != nil {
		return fmt.Errorf("recording the fence at %s: %w", b.fenceRel, err)
	}
	if len(want.V4) > 0 {
		var recs []*armdns.ARecord
		for _, v := range want.V4 {
			recs = append(recs, &armdns.ARecord{IPv4Address: new(v)})
		}
		if _, err := b.api.CreateOrUpdate(ctx, z.ResourceGroup, z.Zone, b.rel, armdns.RecordTypeA, armdns.RecordSet{
			Properties: &armdns.RecordSetProperties{TTL: &ttl, ARecords: recs},
		}, nil); err != nil {
			return fmt.Errorf("writing the A record: %w", err)
		}
	}
	if len(want.V6) > 0 {
		var recs []*armdns.AaaaRecord
		for _, v := range want.V6 {
			recs = append(recs, &armdns.AaaaRecord{IPv6Address: new(v)})
		}
		if _, err := b.api.CreateOrUpdate(ctx, z.ResourceGroup, z.Zone, b.rel, armdns.RecordTypeAAAA, armdns.RecordSet{
			Properties: &armdns.RecordSetProperties{TTL: &ttl, AaaaRecords: recs},
		}, nil); err != nil {
			return fmt.Errorf("writing the AAAA record: %w", err)
		}
	}
	return nil
}
