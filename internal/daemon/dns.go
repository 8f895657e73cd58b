package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/dns"
)

// dnsName is the dns action: a DNS name that follows the active node.
type dnsName struct {
	a     *dns.Action
	steps []action.Step
}

// buildDNS builds the dns action from its section, or returns nil when
// it is absent.
func (d *Daemon) buildDNS() (subsystem, error) {
	if d.cfg.DNS == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := dns.New(ctx, *d.cfg.DNS, dns.Options{Node: d.cfg.Node.Name, Logger: d.log, Clock: d.clk})
	if err != nil {
		return nil, fmt.Errorf("configuring the DNS name (dns): %w", err)
	}
	return &dnsName{a: a, steps: []action.Step{{
		Action: &throttledVerify{Action: a, every: d.cfg.DNS.Reconcile, clk: d.clk}, Timeout: d.cfg.DNS.Wait + 30*time.Second, Phase: action.PhaseAnnounce,
	}}}, nil
}

func (n *dnsName) Name() string                  { return "dns" }
func (n *dnsName) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (n *dnsName) Steps() []action.Step          { return n.steps }
func (n *dnsName) Status() any                   { return n.a.Status() }
