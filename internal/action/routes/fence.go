package routes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/batonha/baton/internal/action"
	provider "github.com/batonha/baton/internal/provider/aws"
	"github.com/batonha/baton/internal/provider/azure"
)

// FenceTag is the tag that records the fencing token of the last node
// that wrote a resource (route tables; ENIs and Elastic IPs for the
// addresses action) in witness mode.
const FenceTag = "baton:fencing-token"

// AzureFenceTag is FenceTag on Azure (tag names may not hold ':').
const AzureFenceTag = "baton-fencing-token"

// ErrStale is returned when a newer active node (a higher fencing token)
// has written a resource: this node must not overwrite it.
var ErrStale = errors.New("a newer active node owns these resources")

// Register is a fencing token kept in the cloud beside what it guards (a
// tag on each resource written). Clouds without conditional writes (EC2)
// cannot make the token check and the write one operation; Fenced orders
// the reads and writes so that the newer token always wins.
type Register struct {
	What string // "route tables [rtb-1 rtb-2]", for errors
	// Read returns the highest token recorded (0 when none) and the
	// resource that records it.
	Read func(ctx context.Context) (token uint64, where string, err error)
	// Write records token on every resource. It may itself fail with
	// ErrStale (a conditional write that lost to a newer one).
	Write func(ctx context.Context, token uint64) error
}

// Fenced runs write under token (no fencing when token is 0):
//
//  1. read the register: a higher token means a newer active, and nothing
//     is written;
//  2. write;
//  3. read again and record token, never over a higher one (a newer
//     active that wrote during step 2 wins, and this node is stale);
//  4. read after recording: higher means a newer active recorded its
//     token between our read and our write (stale), lower means a stale
//     writer lowered it in that window, and it is recorded again.
//
// A stale node gets ErrStale as a fault (it demotes), so whatever it wrote
// after the newer active did is repaired by the newer active's next
// verify, which passes step 1, while the stale one stops writing.
func Fenced(ctx context.Context, token uint64, reg Register, write func() error) error {
	if token == 0 {
		return write()
	}
	if err := reg.above(ctx, token); err != nil {
		return staleFault(err)
	}
	if err := write(); err != nil {
		return staleFault(err)
	}
	for range 3 {
		have, where, err := reg.Read(ctx)
		if err != nil {
			return fmt.Errorf("reading the fencing token of %s: %w", reg.What, err)
		}
		if have > token {
			return staleFault(staleErr(where, have, token))
		}
		if have == token {
			return nil
		}
		if err := reg.Write(ctx, token); err != nil {
			return staleFault(fmt.Errorf("recording fencing token %d on %s: %w", token, reg.What, err))
		}
	}
	return fmt.Errorf("recording fencing token %d on %s: another writer keeps lowering it", token, reg.What)
}

// above fails with ErrStale when the register holds a token above token.
func (reg Register) above(ctx context.Context, token uint64) error {
	have, where, err := reg.Read(ctx)
	if err != nil {
		return fmt.Errorf("reading the fencing token of %s: %w", reg.What, err)
	}
	if have > token {
		return staleErr(where, have, token)
	}
	return nil
}

func staleErr(where string, have, token uint64) error {
	return fmt.Errorf("%s was written under fencing token %d, this node holds %d: %w", where, have, token, ErrStale)
}

// staleFault makes a stale writer's error a fault, which demotes it.
func staleFault(err error) error {
	if errors.Is(err, ErrStale) && !errors.Is(err, action.ErrFault) {
		return action.Fault(err)
	}
	return err
}

// fencer is implemented by backends that keep a fencing register on their
// route tables.
type fencer interface {
	register(tables []string) Register
}

// fenced runs write under the fencing token when the backend keeps a
// register (see Fenced).
func (a *Action) fenced(ctx context.Context, token uint64, write func() error) error {
	f, ok := a.b.(fencer)
	if !ok || token == 0 {
		return write()
	}
	tables, err := a.tables(ctx)
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	return Fenced(ctx, token, f.register(tables), write)
}

// AWSTokens returns the highest FenceTag value among tagged resources and
// the resource that holds it. Unparsable values count as 0.
func AWSTokens[T any](items []T, id func(T) string, tags func(T) []types.Tag) (uint64, string) {
	var best uint64
	where := ""
	for _, it := range items {
		for _, tag := range tags(it) {
			if awssdk.ToString(tag.Key) != FenceTag {
				continue
			}
			if n, err := strconv.ParseUint(awssdk.ToString(tag.Value), 10, 64); err == nil && n > best {
				best, where = n, id(it)
			}
		}
	}
	return best, where
}

// AWSWriteTokens records token in FenceTag on resources (one CreateTags).
func AWSWriteTokens(ctx context.Context, api provider.EC2API, resources []string, token uint64) error {
	_, err := api.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: resources,
		Tags:      []types.Tag{{Key: awssdk.String(FenceTag), Value: awssdk.String(strconv.FormatUint(token, 10))}},
	})
	if err != nil && provider.IsDenied(err) {
		return fmt.Errorf("missing IAM permission ec2:CreateTags: %w", err)
	}
	return err
}

func (b *awsBackend) register(tables []string) Register {
	return Register{
		What: fmt.Sprintf("route tables %v", tables),
		Read: func(ctx context.Context) (uint64, string, error) {
			out, err := b.api.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: tables})
			if err != nil {
				return 0, "", describeErr("reading the fencing tags of the route tables", err)
			}
			have, where := AWSTokens(out.RouteTables, func(rt types.RouteTable) string { return "route table " + awssdk.ToString(rt.RouteTableId) },
				func(rt types.RouteTable) []types.Tag { return rt.Tags })
			return have, where, nil
		},
		Write: func(ctx context.Context, token uint64) error { return AWSWriteTokens(ctx, b.api, tables, token) },
	}
}

func (b *azureBackend) register(tables []string) Register {
	return Register{
		What: fmt.Sprintf("route tables %v", tables),
		Read: func(ctx context.Context) (uint64, string, error) {
			var mu sync.Mutex
			var best uint64
			where := ""
			err := eachTable(tables, func(table string) error {
				_, resp, err := b.getTable(ctx, table)
				if err != nil {
					return err
				}
				if have, ok := azureToken(resp.Tags); ok {
					mu.Lock()
					if have > best {
						best, where = have, "route table "+table
					}
					mu.Unlock()
				}
				return nil
			})
			return best, where, err
		},
		Write: func(ctx context.Context, token uint64) error {
			return eachTable(tables, func(table string) error { return b.writeToken(ctx, table, token) })
		},
	}
}

// writeToken writes the token tag with If-Match on the table's ETag as
// read just before, never over a higher token: a newer active recording
// its own token in between wins (412) and this node learns it is stale.
func (b *azureBackend) writeToken(ctx context.Context, table string, token uint64) error {
	id, resp, err := b.getTable(ctx, table)
	if err != nil {
		return err
	}
	if have, ok := azureToken(resp.Tags); ok && have > token {
		return staleErr("route table "+table, have, token)
	}
	tags := maps.Clone(resp.Tags)
	if tags == nil {
		tags = map[string]*string{}
	}
	v := strconv.FormatUint(token, 10)
	tags[AzureFenceTag] = &v
	wctx := ctx
	if resp.Etag != nil {
		wctx = policy.WithHTTPHeader(ctx, http.Header{"If-Match": []string{*resp.Etag}})
	}
	if _, err := b.cl.RouteTables.UpdateTags(wctx, id.ResourceGroup, id.Name, armnetwork.TagsObject{Tags: tags}, nil); err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusPreconditionFailed {
			return fmt.Errorf("route table %s changed while recording fencing token %d: %w", table, token, ErrStale)
		}
		return azErr(err, "Microsoft.Network/routeTables/write", "recording fencing token on "+table)
	}
	return nil
}

// getTable reads one route table with its tags and ETag.
func (b *azureBackend) getTable(ctx context.Context, table string) (azure.ResourceID, armnetwork.RouteTablesClientGetResponse, error) {
	id, err := azure.ParseID(table, "Microsoft.Network/routeTables")
	if err != nil {
		return id, armnetwork.RouteTablesClientGetResponse{}, err
	}
	resp, err := b.cl.RouteTables.Get(ctx, id.ResourceGroup, id.Name, nil)
	if err != nil {
		return id, resp, azErr(err, "Microsoft.Network/routeTables/read", "reading route table "+table)
	}
	return id, resp, nil
}

// eachTable runs fn for every table at once (one round trip for any
// number of tables, as the route writes) and joins the errors.
func eachTable(tables []string, fn func(table string) error) error {
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, table := range tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(table)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// azureToken reads the fencing token from Azure tags.
func azureToken(tags map[string]*string) (uint64, bool) {
	v, ok := tags[AzureFenceTag]
	if !ok || v == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(*v, 10, 64)
	return n, err == nil
}
