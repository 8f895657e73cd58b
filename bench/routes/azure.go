package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/lab/cloud"
	"github.com/batonha/baton/internal/provider/azure"
	"github.com/batonha/baton/internal/retry"
)

const (
	azSub   = "00000000-0000-4000-8000-0000000000be"
	azLocal = "10.1.0.4"
	azPeer  = "10.1.0.5"
)

// staticCred hands out a token the emulator does not check.
type staticCred struct{}

func (staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "bench", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// runAzure measures n routes over tables Azure route tables whose writes
// take lro each and are serialized per table: baton's whole-table writes,
// then route-by-route writes on a fresh emulator. It prints the line and
// reports whether the target (≤ 3 × lro) is met.
func runAzure(n, tables int, latency, lro time.Duration, verbose bool) (bool, error) {
	whole, wholeWrites, err := azureOnce(n, tables, latency, lro, false, verbose)
	if err != nil {
		return false, fmt.Errorf("whole-table writes: %w", err)
	}
	per, perWrites, err := azureOnce(n, tables, latency, lro, true, verbose)
	if err != nil {
		return false, fmt.Errorf("route-by-route writes: %w", err)
	}
	fmt.Printf("routes cloud=azure n=%d tables=%d lro_ms=%d total_ms=%d writes=%d per_route_ms=%d per_route_writes=%d\n",
		n, tables, lro.Milliseconds(), whole.Milliseconds(), wholeWrites, per.Milliseconds(), perWrites)
	ok := whole <= 3*lro
	fmt.Fprintf(os.Stderr, "  api_latency_ms=%d speedup=%.1f targets_met=%t\n", latency.Milliseconds(), float64(per)/float64(whole), ok)
	return ok, nil
}

func azureOnce(n, tables int, latency, lro time.Duration, perRoute, verbose bool) (time.Duration, int, error) {
	api := cloud.New(cloud.Options{Latency: latency, ARMOperation: lro})
	defer api.Close()
	perTable := n / tables
	var ids, dests []string
	for d := range perTable {
		dests = append(dests, fmt.Sprintf("10.100.%d.%d/32", d/250, 1+d%250))
	}
	for i := range tables {
		id := cloud.TableID(azSub, "rg-bench", fmt.Sprintf("rt-%d", i))
		ids = append(ids, id)
		var rs []cloud.AzureRoute
		for j, d := range dests {
			rs = append(rs, cloud.AzureRoute{Name: fmt.Sprintf("r%d", j), Prefix: d, NextHopType: "VirtualAppliance", NextHopIP: azPeer})
		}
		if err := api.AddAzureTable(id, "westeurope", nil, rs...); err != nil {
			return 0, 0, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, fmt.Errorf("listening on loopback: %w", err)
	}
	go func() { _ = api.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	cl, err := azure.New(azure.Options{SubscriptionID: azSub, Endpoint: url, Credential: staticCred{}})
	if err != nil {
		return 0, 0, err
	}
	dir, err := os.MkdirTemp("", "bench-routes-azure-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	// Route by route, each route waits its turn on its table: up to
	// perTable operations, each retried on 409 until then.
	cfg := routes.Config{Cloud: "azure", StateDir: dir, Concurrency: 128, Attempts: 4 * perTable, Azure: &routes.Azure{
		SubscriptionID: azSub, TableIDs: ids, Destinations: dests, LocalIP: azLocal, PeerIP: azPeer, Endpoint: url,
	}}
	if errs := cfg.Validate(); len(errs) > 0 {
		return 0, 0, fmt.Errorf("config: %v", errs)
	}
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if verbose {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	a, err := routes.NewAzure(cfg, cl, routes.Options{Logger: slog.New(h), PerRoute: perRoute, Backoff: retry.Backoff{Max: 2 * time.Second}})
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	err = a.Activate(ctx, action.Takeover{Term: 2, Reason: "bench"})
	total := time.Since(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("takeover: %w", err)
	}
	for _, id := range ids {
		for _, r := range api.AzureRoutes(id) {
			if r.NextHopIP != azLocal {
				return 0, 0, fmt.Errorf("route %s in %s points at %s after the takeover", r.Prefix, id, r.NextHopIP)
			}
		}
	}
	return total, api.Counts().Operations, nil
}
