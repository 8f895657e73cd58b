package witness

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/batonha/baton/internal/clock"
)

// DynamoAPI is the part of the DynamoDB client the witness uses.
type DynamoAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// DynamoDB attribute names. The table's partition key is "id" (string).
const (
	dynID      = "id"
	dynHolder  = "holder"
	dynToken   = "token"
	dynExpires = "expires" // Unix milliseconds on the holder's wall clock
)

// DynamoDB is the witness on one item of a DynamoDB table (partition key
// "id", a string). The item holds the holder's name, the fencing token and
// the expiry time; every change is one conditional UpdateItem, and a new
// grant increments the token in the same write. The item is never
// deleted, so the token keeps growing across releases.
//
// DynamoDB has no lease clock of its own: the expiry is the holder's wall
// clock time when it sent the request plus the TTL, and another node
// treats the lease as free only once its own wall clock is ClockSkew past
// that expiry. The nodes' wall clocks must therefore agree to within
// ClockSkew.
type DynamoDB struct {
	api   DynamoAPI
	table string
	key   string
	skew  time.Duration
	clock clock.Clock
}

// NewDynamoDB returns the witness on item key of table.
func NewDynamoDB(api DynamoAPI, table, key string, clockSkew time.Duration, c clock.Clock) (*DynamoDB, error) {
	if table == "" || key == "" {
		return nil, errors.New("creating DynamoDB witness: table and key are required")
	}
	if clockSkew < 0 {
		return nil, fmt.Errorf("creating DynamoDB witness: clock skew %v is negative", clockSkew)
	}
	if c == nil {
		c = clock.Real{}
	}
	return &DynamoDB{api: api, table: table, key: key, skew: clockSkew, clock: c}, nil
}

func (d *DynamoDB) where() string { return d.table + "/" + d.key }

func (d *DynamoDB) itemKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynID: &types.AttributeValueMemberS{Value: d.key}}
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

var dynNames = map[string]string{"#h": dynHolder, "#t": dynToken, "#e": dynExpires}

func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

func (d *DynamoDB) Acquire(ctx context.Context, holder string, ttl time.Duration) (Grant, error) {
	if holder == "" || ttl <= 0 {
		return Grant{}, fmt.Errorf("acquiring DynamoDB lease %s: holder %q ttl %v: invalid", d.where(), holder, ttl)
	}
	now := d.clock.Now()
	// A new grant: the item is absent, released, or expired ClockSkew ago.
	out, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(d.table),
		Key:                      d.itemKey(),
		UpdateExpression:         aws.String("SET #h = :h, #e = :e ADD #t :one"),
		ConditionExpression:      aws.String("attribute_not_exists(#h) OR #h = :free OR #e < :cutoff"),
		ExpressionAttributeNames: dynNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":h":      &types.AttributeValueMemberS{Value: holder},
			":e":      &types.AttributeValueMemberN{Value: millis(now.Add(ttl))},
			":one":    &types.AttributeValueMemberN{Value: "1"},
			":free":   &types.AttributeValueMemberS{Value: ""},
			":cutoff": &types.AttributeValueMemberN{Value: millis(now.Add(-d.skew))},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err == nil {
		rec, err := parseDynamoItem(out.Attributes)
		if err != nil {
			return Grant{}, fmt.Errorf("acquiring DynamoDB lease %s: %w", d.where(), err)
		}
		return Grant{Holder: holder, Token: rec.token, TTL: ttl, Acquired: now, Renewed: now}, nil
	}
	if !isConditionFailed(err) {
		return Grant{}, fmt.Errorf("acquiring DynamoDB lease %s: %w", d.where(), err)
	}
	// Somebody holds it: perhaps us (a restart, or a keeper that gave up early).
	out, err = d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(d.table),
		Key:                      d.itemKey(),
		UpdateExpression:         aws.String("SET #e = :e"),
		ConditionExpression:      aws.String("#h = :h"),
		ExpressionAttributeNames: map[string]string{"#h": dynHolder, "#e": dynExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":h": &types.AttributeValueMemberS{Value: holder},
			":e": &types.AttributeValueMemberN{Value: millis(now.Add(ttl))},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err == nil {
		rec, err := parseDynamoItem(out.Attributes)
		if err != nil {
			return Grant{}, fmt.Errorf("acquiring DynamoDB lease %s: %w", d.where(), err)
		}
		return Grant{Holder: holder, Token: rec.token, TTL: ttl, Acquired: now, Renewed: now}, nil
	}
	if !isConditionFailed(err) {
		return Grant{}, fmt.Errorf("acquiring DynamoDB lease %s: %w", d.where(), err)
	}
	held := &HeldError{}
	if h, tok, err := d.Holder(ctx); err == nil {
		held.Holder, held.Token = h, tok
	}
	return Grant{}, fmt.Errorf("acquiring DynamoDB lease %s for %s: %w", d.where(), holder, held)
}

func (d *DynamoDB) Renew(ctx context.Context, g Grant) (Grant, error) {
	now := d.clock.Now()
	_, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(d.table),
		Key:                      d.itemKey(),
		UpdateExpression:         aws.String("SET #e = :e"),
		ConditionExpression:      aws.String("#h = :h AND #t = :t"),
		ExpressionAttributeNames: dynNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":h": &types.AttributeValueMemberS{Value: g.Holder},
			":t": &types.AttributeValueMemberN{Value: strconv.FormatUint(g.Token, 10)},
			":e": &types.AttributeValueMemberN{Value: millis(now.Add(g.TTL))},
		},
	})
	if isConditionFailed(err) {
		return g, lost("renewing DynamoDB lease %s for %s token %d", d.where(), g.Holder, g.Token)
	}
	if err != nil {
		return g, fmt.Errorf("renewing DynamoDB lease %s: %w", d.where(), err)
	}
	g.Renewed = now
	return g, nil
}

func (d *DynamoDB) Release(ctx context.Context, g Grant) error {
	_, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(d.table),
		Key:                      d.itemKey(),
		UpdateExpression:         aws.String("SET #h = :free, #e = :zero"),
		ConditionExpression:      aws.String("#h = :h AND #t = :t"),
		ExpressionAttributeNames: dynNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":h":    &types.AttributeValueMemberS{Value: g.Holder},
			":t":    &types.AttributeValueMemberN{Value: strconv.FormatUint(g.Token, 10)},
			":free": &types.AttributeValueMemberS{Value: ""},
			":zero": &types.AttributeValueMemberN{Value: "0"},
		},
	})
	if err != nil && !isConditionFailed(err) { // not ours any more: nothing to release
		return fmt.Errorf("releasing DynamoDB lease %s: %w", d.where(), err)
	}
	return nil
}

func (d *DynamoDB) Holder(ctx context.Context) (string, uint64, error) {
	out, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), Key: d.itemKey(), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", 0, fmt.Errorf("reading DynamoDB lease %s: %w", d.where(), err)
	}
	if len(out.Item) == 0 {
		return "", 0, nil
	}
	rec, err := parseDynamoItem(out.Item)
	if err != nil {
		return "", 0, fmt.Errorf("reading DynamoDB lease %s: %w", d.where(), err)
	}
	// Reported as held until others may take it: ClockSkew past expiry.
	if rec.holder == "" || !d.clock.Now().Before(time.UnixMilli(rec.expires).Add(d.skew)) {
		return "", 0, nil
	}
	return rec.holder, rec.token, nil
}

// leaseRecord is the lease as stored in a DynamoDB item or blob metadata.
type leaseRecord struct {
	holder  string
	token   uint64
	expires int64 // Unix ms; DynamoDB only
}

// parseDynamoItem decodes the lease item.
func parseDynamoItem(item map[string]types.AttributeValue) (leaseRecord, error) {
	var rec leaseRecord
	if h, ok := item[dynHolder].(*types.AttributeValueMemberS); ok {
		rec.holder = h.Value
	}
	tok, _ := item[dynToken].(*types.AttributeValueMemberN)
	exp, _ := item[dynExpires].(*types.AttributeValueMemberN)
	var tokS, expS string
	if tok != nil {
		tokS = tok.Value
	}
	if exp != nil {
		expS = exp.Value
	}
	return parseRecord(rec.holder, tokS, expS)
}

// parseRecord checks and decodes the stored text form of a lease.
func parseRecord(holder, token, expires string) (leaseRecord, error) {
	rec := leaseRecord{holder: holder}
	var err error
	if token != "" {
		if rec.token, err = strconv.ParseUint(token, 10, 64); err != nil {
			return rec, fmt.Errorf("decoding lease token %q: %w", token, err)
		}
	}
	if expires != "" {
		if rec.expires, err = strconv.ParseInt(expires, 10, 64); err != nil {
			return rec, fmt.Errorf("decoding lease expiry %q: %w", expires, err)
		}
	}
	if holder != "" && rec.token == 0 {
		return rec, fmt.Errorf("decoding lease: holder %q without a token", holder)
	}
	return rec, nil
}
