package peerings

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// healthInventory peers only the instances whose own health endpoint
// answers 200 (see Healthy).
type healthInventory struct {
	inv    Inventory
	c      HealthConfig
	client *http.Client
}

// Healthy filters inv to the instances whose own health endpoint (baton's
// HA check port: 200 while the instance is ACTIVE and announcing, 503
// otherwise) answers 200 within c.Timeout, asked in parallel. When not a
// single instance answers at all, the health is unknown (a firewall in
// the way, say): Instances fails, and the round changes nothing instead
// of removing every peering. client nil: a plain one without keep-alive.
func Healthy(inv Inventory, c HealthConfig, client *http.Client) Inventory {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	}
	return &healthInventory{inv: inv, c: c, client: client}
}

// Instances implements Inventory.
func (h *healthInventory) Instances(ctx context.Context) ([]Instance, error) {
	all, err := h.inv.Instances(ctx)
	if err != nil || len(all) == 0 {
		return all, err
	}
	type verdict struct {
		answered, healthy bool
		err               error
	}
	out := make([]verdict, len(all))
	var wg sync.WaitGroup
	for i, in := range all {
		wg.Go(func() { out[i].answered, out[i].healthy, out[i].err = h.ask(ctx, in) })
	}
	wg.Wait()
	var healthy []Instance
	var errs []error
	answered := false
	for i, v := range out {
		answered = answered || v.answered
		if v.healthy {
			healthy = append(healthy, all[i])
		}
		if v.err != nil {
			errs = append(errs, v.err)
		}
	}
	if !answered {
		return nil, fmt.Errorf("no instance's health endpoint (port %d) answered, keeping the peerings as they are: %w", h.c.Port, errors.Join(errs...))
	}
	return healthy, nil
}

func (h *healthInventory) ask(ctx context.Context, in Instance) (answered, healthy bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.c.Timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(in.IP, strconv.Itoa(h.c.Port)) + h.c.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, false, fmt.Errorf("asking %s (%s): %w", in.Name, url, err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return false, false, fmt.Errorf("asking %s (%s): %w", in.Name, url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return true, resp.StatusCode == http.StatusOK, nil
}
