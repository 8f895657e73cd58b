package dns

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/batonha/baton/internal/clock"
)

// Route53API is the part of the Route 53 client the action uses.
type Route53API interface {
	ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, opts ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
	ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, opts ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error)
	GetChange(ctx context.Context, in *route53.GetChangeInput, opts ...func(*route53.Options)) (*route53.GetChangeOutput, error)
}

type route53Backend struct {
	api  Route53API
	cfg  Config
	clk  clock.Clock
	name string // fully qualified, with the trailing dot
}

func newRoute53(ctx context.Context, cfg Config, opt Options) (*route53Backend, error) {
	api := opt.Route53
	if api == nil {
		var load []func(*config.LoadOptions) error
		if cfg.AWS.Region != "" {
			load = append(load, config.WithRegion(cfg.AWS.Region))
		}
		ac, err := config.LoadDefaultConfig(ctx, load...)
		if err != nil {
			return nil, fmt.Errorf("loading AWS configuration for Route 53: %w", err)
		}
		api = route53.NewFromConfig(ac, func(o *route53.Options) {
			if cfg.AWS.Endpoint != "" {
				o.BaseEndpoint = awssdk.String(cfg.AWS.Endpoint)
			}
		})
	}
	return &route53Backend{api: api, cfg: cfg, clk: opt.Clock, name: fqdn(cfg.Name)}, nil
}

func (b *route53Backend) describe() string { return "Route 53 zone " + b.cfg.AWS.ZoneID }

// FenceName is the TXT record that carries the fence of name.
func FenceName(name string) string { return "_baton." + fqdn(name) }

// sets lists the record sets named name (with this node's set identifier
// when it has one).
func (b *route53Backend) sets(ctx context.Context, name string, ident string) ([]types.ResourceRecordSet, error) {
	out, err := b.api.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: awssdk.String(b.cfg.AWS.ZoneID), StartRecordName: awssdk.String(name), MaxItems: awssdk.Int32(20),
	})
	if err != nil {
		return nil, err
	}
	var sets []types.ResourceRecordSet
	for _, s := range out.ResourceRecordSets {
		if fqdn(unescape(awssdk.ToString(s.Name))) == name && awssdk.ToString(s.SetIdentifier) == ident {
			sets = append(sets, s)
		}
	}
	return sets, nil
}

// unescape turns Route 53's octal escapes (\052 for *) back into text.
func unescape(s string) string { return strings.ReplaceAll(s, `\052`, "*") }

func values(s types.ResourceRecordSet) []string {
	var v []string
	for _, r := range s.ResourceRecords {
		v = append(v, awssdk.ToString(r.Value))
	}
	slices.Sort(v)
	return v
}

func (b *route53Backend) read(ctx context.Context) (record, error) {
	var r record
	sets, err := b.sets(ctx, b.name, b.cfg.AWS.SetIdentifier)
	if err != nil {
		return r, err
	}
	for _, s := range sets {
		switch s.Type {
		case types.RRTypeA:
			r.V4 = values(s)
		case types.RRTypeAaaa:
			r.V6 = values(s)
		}
	}
	fence, err := b.sets(ctx, FenceName(b.name), "")
	if err != nil {
		return r, err
	}
	for _, s := range fence {
		if s.Type == types.RRTypeTxt && len(s.ResourceRecords) == 1 {
			r.Node, r.Token, r.found = parseFence(awssdk.ToString(s.ResourceRecords[0].Value))
		}
	}
	return r, nil
}

func (b *route53Backend) addressSet(t types.RRType, vals []string) *types.ResourceRecordSet {
	s := &types.ResourceRecordSet{Name: awssdk.String(b.name), Type: t, TTL: awssdk.Int64(b.cfg.TTL)}
	for _, v := range vals {
		s.ResourceRecords = append(s.ResourceRecords, types.ResourceRecord{Value: awssdk.String(v)})
	}
	if a := b.cfg.AWS; a.SetIdentifier != "" {
		s.SetIdentifier = awssdk.String(a.SetIdentifier)
		s.Weight = a.Weight
		if a.Failover != "" {
			s.Failover = types.ResourceRecordSetFailover(a.Failover)
		}
	}
	return s
}

func (b *route53Backend) fenceSet(node string, token uint64) *types.ResourceRecordSet {
	return &types.ResourceRecordSet{Name: awssdk.String(FenceName(b.name)), Type: types.RRTypeTxt, TTL: awssdk.Int64(b.cfg.TTL),
		ResourceRecords: []types.ResourceRecord{{Value: awssdk.String(`"` + fenceValue(node, token) + `"`)}}}
}

// write sends one change batch — Route 53 applies it atomically: the old
// fence is deleted by its exact value (the batch fails if another writer
// changed it), the new one created, the addresses upserted — then waits
// for INSYNC.
func (b *route53Backend) write(ctx context.Context, prev, want record) error {
	var changes []types.Change
	if prev.found {
		changes = append(changes, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: b.fenceSet(prev.Node, prev.Token)})
		changes = append(changes, types.Change{Action: types.ChangeActionCreate, ResourceRecordSet: b.fenceSet(want.Node, want.Token)})
	} else {
		changes = append(changes, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: b.fenceSet(want.Node, want.Token)})
	}
	if len(want.V4) > 0 {
		changes = append(changes, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: b.addressSet(types.RRTypeA, want.V4)})
	}
	if len(want.V6) > 0 {
		changes = append(changes, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: b.addressSet(types.RRTypeAaaa, want.V6)})
	}
	out, err := b.api.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: awssdk.String(b.cfg.AWS.ZoneID),
		ChangeBatch:  &types.ChangeBatch{Comment: awssdk.String("baton: " + want.Node + " is active"), Changes: changes},
	})
	if err != nil {
		return fmt.Errorf("ChangeResourceRecordSets: %w", err)
	}
	if out.ChangeInfo == nil {
		return nil
	}
	return b.waitInSync(ctx, out.ChangeInfo)
}

// waitInSync polls GetChange every second until the change is INSYNC.
func (b *route53Backend) waitInSync(ctx context.Context, ci *types.ChangeInfo) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Wait)
	defer cancel()
	for ci.Status != types.ChangeStatusInsync {
		if err := clock.Sleep(ctx, b.clk, time.Second); err != nil {
			return fmt.Errorf("waiting for change %s to be INSYNC: %w", awssdk.ToString(ci.Id), err)
		}
		out, err := b.api.GetChange(ctx, &route53.GetChangeInput{Id: ci.Id})
		if err != nil {
			return fmt.Errorf("GetChange %s: %w", awssdk.ToString(ci.Id), err)
		}
		ci = out.ChangeInfo
	}
	return nil
}
