package witness

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/lab/labtest"
)

// startMoto runs moto_server on a free port and returns its URL.
func startMoto(t *testing.T) string {
	bin := labtest.RequireTool(t, "moto_server")
	port := freePort(t)
	startServer(t, port, bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

func newDynamoPair(t *testing.T, clk clock.Clock) (Backend, Backend) {
	t.Helper()
	url := startMoto(t)
	ctx := context.Background()
	cfg := Config{Type: TypeDynamoDB}
	cfg.SetDefaults()
	cfg.Insecure = true // the test servers speak plain HTTP
	cfg.DynamoDB.Region = "us-east-1"
	cfg.DynamoDB.Endpoint = url
	cfg.DynamoDB.Table = "baton-witness"
	a, err := New(ctx, cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.(*DynamoDB).api.(*dynamodb.Client).CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(cfg.DynamoDB.Table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("creating table: %v", err)
	}
	return a, b
}

func TestDynamoDBContract(t *testing.T) {
	// DynamoDB expiry is the clients' wall clock: a fake clock shared by
	// both clients drives it without waiting.
	clk := clock.NewFake(t0)
	a, b := newDynamoPair(t, clk)
	contract{a: a, b: b, ttl: 5 * time.Second, advance: clk.Advance, slack: DefaultClockSkew}.run(t)
}

func TestDynamoDBClockSkew(t *testing.T) {
	// b's clock runs 800ms ahead of a's: it must still not take a's lease
	// before a's own clock says it expired.
	clkA := clock.NewFake(t0)
	clkB := clock.NewFake(t0.Add(800 * time.Millisecond))
	a, _ := newDynamoPair(t, clkA)
	b := *a.(*DynamoDB)
	b.clock = clkB
	ctx := context.Background()
	ga, err := a.Acquire(ctx, "a", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clkA.Advance(5 * time.Second) // a's lease has just expired on a's clock
	clkB.Advance(5 * time.Second) // b's clock reads expiry + 800ms
	if _, err := b.Acquire(ctx, "b", 5*time.Second); !errors.Is(err, ErrHeld) {
		t.Fatalf("b took the lease within the clock-skew allowance: %v", err)
	}
	clkB.Advance(201 * time.Millisecond)
	gb, err := b.Acquire(ctx, "b", 5*time.Second)
	if err != nil || gb.Token <= ga.Token {
		t.Fatalf("b after expiry + skew: %+v %v", gb, err)
	}
}

func TestDynamoDBKeepers(t *testing.T) {
	a, b := newDynamoPair(t, nil)
	testKeepersReal(t, a, b)
}
