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

// FenceTag is the route-table tag that records the fencing token of the
// last node that wrote the table's routes (witness mode).
const FenceTag = "baton:fencing-token"

// ErrStale is returned when a newer active node (a higher fencing token)
// has written the table: this node must not overwrite it.
var ErrStale = errors.New("a newer active node owns these routes")

// fencer is implemented by backends that can fence writes by token.
type fencer interface {
	// checkFence fails with ErrStale when a table records a token higher
	// than token.
	checkFence(ctx context.Context, tables []string, token uint64) error
	// recordFence records token on the tables.
	recordFence(ctx context.Context, tables []string, token uint64) error
}

// fenced runs write between a check and a record of the fencing token when
// the takeover carries one and the backend supports it. A stale writer gets
// a fault, which demotes it.
func (a *Action) fenced(ctx context.Context, t action.Takeover, write func() error) error {
	f, ok := a.b.(fencer)
	if !ok || t.Token == 0 {
		return write()
	}
	tables, err := a.tables(ctx)
	if err != nil {
		return err
	}
	if err := f.checkFence(ctx, tables, t.Token); err != nil {
		return staleFault(err)
	}
	if err := write(); err != nil {
		return err
	}
	return staleFault(f.recordFence(ctx, tables, t.Token))
}

// staleFault makes a stale writer's error a fault, which demotes it.
func staleFault(err error) error {
	if errors.Is(err, ErrStale) {
		return action.Fault(err)
	}
	return err
}

func (b *awsBackend) checkFence(ctx context.Context, tables []string, token uint64) error {
	out, err := b.api.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: tables})
	if err != nil {
		return describeErr("reading the fencing tags of the route tables", err)
	}
	for _, rt := range out.RouteTables {
		for _, tag := range rt.Tags {
			if awssdk.ToString(tag.Key) != FenceTag {
				continue
			}
			have, err := strconv.ParseUint(awssdk.ToString(tag.Value), 10, 64)
			if err == nil && have > token {
				return fmt.Errorf("route table %s was written under fencing token %d, this node holds %d: %w",
					awssdk.ToString(rt.RouteTableId), have, token, ErrStale)
			}
		}
	}
	return nil
}

func (b *awsBackend) recordFence(ctx context.Context, tables []string, token uint64) error {
	_, err := b.api.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: tables,
		Tags:      []types.Tag{{Key: awssdk.String(FenceTag), Value: awssdk.String(strconv.FormatUint(token, 10))}},
	})
	if err != nil {
		if provider.IsDenied(err) {
			return fmt.Errorf("recording fencing token %d on %v: missing IAM permission ec2:CreateTags: %w", token, tables, err)
		}
		return fmt.Errorf("recording fencing token %d on %v: %w", token, tables, err)
	}
	return nil
}

// AzureFenceTag is FenceTag on Azure (tag names may not hold ':').
const AzureFenceTag = "baton-fencing-token"

func (b *azureBackend) checkFence(ctx context.Context, tables []string, token uint64) error {
	return eachTable(tables, func(table string) error {
		_, _, err := b.readFence(ctx, table, token)
		return err
	})
}

// recordFence writes the token tag with If-Match on the table's ETag as
// read just before, so that a newer active recording its own token in
// between wins and this node learns it is stale.
func (b *azureBackend) recordFence(ctx context.Context, tables []string, token uint64) error {
	return eachTable(tables, func(table string) error {
		id, resp, err := b.readFence(ctx, table, token)
		if err != nil {
			return err
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
	})
}

// readFence reads a route table and fails with ErrStale when its tag
// records a token above token.
func (b *azureBackend) readFence(ctx context.Context, table string, token uint64) (azure.ResourceID, armnetwork.RouteTablesClientGetResponse, error) {
	id, err := azure.ParseID(table, "Microsoft.Network/routeTables")
	if err != nil {
		return id, armnetwork.RouteTablesClientGetResponse{}, err
	}
	resp, err := b.cl.RouteTables.Get(ctx, id.ResourceGroup, id.Name, nil)
	if err != nil {
		return id, resp, azErr(err, "Microsoft.Network/routeTables/read", "reading the fencing tag of "+table)
	}
	if have, ok := azureToken(resp.Tags); ok && have > token {
		return id, resp, fmt.Errorf("route table %s was written under fencing token %d, this node holds %d: %w", table, have, token, ErrStale)
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

func azureToken(tags map[string]*string) (uint64, bool) {
	v, ok := tags[AzureFenceTag]
	if !ok || v == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(*v, 10, 64)
	return n, err == nil
}
