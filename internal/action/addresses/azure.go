package addresses

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"

	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/provider/azure"
)

// NewAzure returns the action for Azure over clients.
func NewAzure(cfg Config, clients *azure.Clients, opts Options) (*Action, error) {
	if cfg.Azure == nil {
		return nil, errors.New("creating Azure addresses action: addresses.azure is not set")
	}
	local, err := azure.ParseID(cfg.Azure.LocalNIC, "Microsoft.Network/networkInterfaces")
	if err != nil {
		return nil, fmt.Errorf("addresses.azure.local_nic: %w", err)
	}
	peer, err := azure.ParseID(cfg.Azure.PeerNIC, "Microsoft.Network/networkInterfaces")
	if err != nil {
		return nil, fmt.Errorf("addresses.azure.peer_nic: %w", err)
	}
	opts = fillBackoff(opts, cfg.Attempts)
	return newAction(&azureMover{cl: clients, c: *cfg.Azure, local: local, peer: peer, opts: opts}, opts), nil
}

type azureMover struct {
	cl          *azure.Clients
	c           Azure
	local, peer azure.ResourceID
	opts        Options
}

func azErr(err error, perm, what string) error {
	switch {
	case err == nil:
		return nil
	case azure.IsDenied(err):
		return fmt.Errorf("%s: missing permission %s: %w", what, perm, err)
	case azure.IsNotFound(err):
		return fmt.Errorf("%s: does not exist: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (m *azureMover) do(ctx context.Context, what string, fn func(context.Context) error) error {
	_, err := m.opts.Backoff.Do(ctx, what, azure.Classify, fn)
	return err
}

func (m *azureMover) getNIC(ctx context.Context, id azure.ResourceID, path string) (armnetwork.Interface, error) {
	var nic armnetwork.Interface
	err := m.do(ctx, "reading NIC "+id.Name, func(ctx context.Context) error {
		resp, err := m.cl.Interfaces.Get(ctx, id.ResourceGroup, id.Name, nil)
		if err != nil {
			return azErr(err, "Microsoft.Network/networkInterfaces/read", path+" "+id.Name)
		}
		nic = resp.Interface
		return nil
	})
	return nic, err
}

func (m *azureMover) putNIC(ctx context.Context, id azure.ResourceID, nic armnetwork.Interface) error {
	return m.do(ctx, "updating NIC "+id.Name, func(ctx context.Context) error {
		p, err := m.cl.Interfaces.BeginCreateOrUpdate(ctx, id.ResourceGroup, id.Name, nic, nil)
		if err != nil {
			return azErr(err, "Microsoft.Network/networkInterfaces/write", "NIC "+id.Name)
		}
		if _, err := p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: m.cl.PollFrequency}); err != nil {
			return azErr(err, "Microsoft.Network/networkInterfaces/write", "NIC "+id.Name+": waiting for the operation")
		}
		return nil
	})
}

func configs(nic armnetwork.Interface) []*armnetwork.InterfaceIPConfiguration {
	if nic.Properties == nil {
		return nil
	}
	return nic.Properties.IPConfigurations
}

func privateIP(c *armnetwork.InterfaceIPConfiguration) string {
	if c == nil || c.Properties == nil || c.Properties.PrivateIPAddress == nil {
		return ""
	}
	return *c.Properties.PrivateIPAddress
}

func publicID(c *armnetwork.InterfaceIPConfiguration) string {
	if c == nil || c.Properties == nil || c.Properties.PublicIPAddress == nil || c.Properties.PublicIPAddress.ID == nil {
		return ""
	}
	return *c.Properties.PublicIPAddress.ID
}

func isPrimary(c *armnetwork.InterfaceIPConfiguration) bool {
	return c != nil && c.Properties != nil && c.Properties.Primary != nil && *c.Properties.Primary
}

// target is the local ipConfiguration that public IPs attach to.
func (m *azureMover) target(nic armnetwork.Interface) *armnetwork.InterfaceIPConfiguration {
	for _, c := range configs(nic) {
		if (m.c.IPConfig != "" && c.Name != nil && *c.Name == m.c.IPConfig) || (m.c.IPConfig == "" && isPrimary(c)) {
			return c
		}
	}
	if cs := configs(nic); m.c.IPConfig == "" && len(cs) == 1 {
		return cs[0]
	}
	return nil
}

// missing returns the private IPs and public IP IDs not yet on the local NIC.
func (m *azureMover) missing(nic armnetwork.Interface) (ips, pips []string, err error) {
	for _, ip := range m.c.PrivateIPs {
		if !slices.ContainsFunc(configs(nic), func(c *armnetwork.InterfaceIPConfiguration) bool { return privateIP(c) == ip }) {
			ips = append(ips, ip)
		}
	}
	if len(m.c.PublicIPs) == 0 {
		return ips, nil, nil
	}
	t := m.target(nic)
	if t == nil {
		return nil, nil, fmt.Errorf("addresses.azure.ip_config: NIC %s has no ipConfiguration %q", m.local.Name, m.c.IPConfig)
	}
	for _, id := range m.c.PublicIPs {
		if !strings.EqualFold(publicID(t), id) {
			pips = append(pips, id)
		}
	}
	if len(pips) > 1 {
		return nil, nil, fmt.Errorf("addresses.azure.public_ips: an ipConfiguration holds one public IP; %d are configured", len(m.c.PublicIPs))
	}
	return ips, pips, nil
}

func (m *azureMover) check(ctx context.Context) error {
	var errs []error
	nic, err := m.getNIC(ctx, m.local, "addresses.azure.local_nic")
	if err != nil {
		errs = append(errs, err)
	} else if _, _, err := m.missing(nic); err != nil {
		errs = append(errs, err)
	}
	if _, err := m.getNIC(ctx, m.peer, "addresses.azure.peer_nic"); err != nil {
		errs = append(errs, err)
	}
	for i, id := range m.c.PublicIPs {
		r, _ := azure.ParseID(id, "Microsoft.Network/publicIPAddresses")
		err := m.do(ctx, "reading public IP "+r.Name, func(ctx context.Context) error {
			_, err := m.cl.PublicIPs.Get(ctx, r.ResourceGroup, r.Name, nil)
			return azErr(err, "Microsoft.Network/publicIPAddresses/read", fmt.Sprintf("addresses.azure.public_ips[%d] %s", i, r.Name))
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func ipConfigName(ip string) string {
	return "baton-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip)
}

func (m *azureMover) ensure(ctx context.Context, repair bool) ([]Change, error) {
	start := m.opts.Clock.Now()
	local, err := m.getNIC(ctx, m.local, "addresses.azure.local_nic")
	if err != nil {
		return nil, err
	}
	ips, pips, err := m.missing(local)
	if err != nil || len(ips)+len(pips) == 0 {
		return nil, err
	}
	fail := func(err error) ([]Change, error) {
		var ch []Change
		for _, a := range append(slices.Clone(ips), pips...) {
			ch = append(ch, Change{Address: a, Kind: kind(a), Started: start, Duration: m.opts.Clock.Now().Sub(start), Err: err})
		}
		return ch, err
	}
	// Release the addresses from the peer's NIC first: Azure refuses an IP
	// or public IP that another ipConfiguration still holds.
	peer, err := m.getNIC(ctx, m.peer, "addresses.azure.peer_nic")
	if err != nil {
		return fail(err)
	}
	var keep []*armnetwork.InterfaceIPConfiguration
	moved := map[string]*armnetwork.InterfaceIPConfiguration{}
	changed := false
	for _, c := range configs(peer) {
		ip := privateIP(c)
		if slices.Contains(ips, ip) {
			if isPrimary(c) {
				return fail(fmt.Errorf("addresses.azure.private_ips: %s is the primary ipConfiguration of peer NIC %s and cannot move", ip, m.peer.Name))
			}
			moved[ip] = c
			changed = true
			continue
		}
		if pid := publicID(c); pid != "" && slices.ContainsFunc(pips, func(p string) bool { return strings.EqualFold(p, pid) }) {
			c.Properties.PublicIPAddress = nil
			changed = true
		}
		keep = append(keep, c)
	}
	if changed {
		peer.Properties.IPConfigurations = keep
		if err := m.putNIC(ctx, m.peer, peer); err != nil {
			return fail(fmt.Errorf("releasing addresses from peer NIC: %w", err))
		}
	}
	// Attach them to this node's NIC.
	var subnet *armnetwork.Subnet
	for _, c := range configs(local) {
		if isPrimary(c) || subnet == nil {
			if c.Properties != nil && c.Properties.Subnet != nil {
				subnet = &armnetwork.Subnet{ID: c.Properties.Subnet.ID}
			}
		}
	}
	for _, ip := range ips {
		name := ipConfigName(ip)
		if old := moved[ip]; old != nil && old.Name != nil {
			name = *old.Name
		}
		local.Properties.IPConfigurations = append(local.Properties.IPConfigurations, &armnetwork.InterfaceIPConfiguration{
			Name: to.Ptr(name),
			Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
				PrivateIPAddress:          to.Ptr(ip),
				PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic),
				Subnet:                    subnet,
				Primary:                   to.Ptr(false),
			},
		})
	}
	if len(pips) > 0 {
		m.target(local).Properties.PublicIPAddress = &armnetwork.PublicIPAddress{ID: to.Ptr(pips[0])}
	}
	if err := m.putNIC(ctx, m.local, local); err != nil {
		return fail(fmt.Errorf("attaching addresses to local NIC: %w", err))
	}
	back, err := m.getNIC(ctx, m.local, "addresses.azure.local_nic")
	if err != nil {
		return fail(fmt.Errorf("reading back: %w", err))
	}
	if ips2, pips2, err := m.missing(back); err != nil || len(ips2)+len(pips2) > 0 {
		return fail(errors.Join(err, fmt.Errorf("read-back of NIC %s still lacks %v", m.local.Name, append(ips2, pips2...))))
	}
	var ch []Change
	for _, a := range append(slices.Clone(ips), pips...) {
		ch = append(ch, Change{Address: a, Kind: kind(a), Started: start, Duration: m.opts.Clock.Now().Sub(start)})
	}
	return ch, nil
}

func kind(a string) string {
	if strings.HasPrefix(a, "/") {
		return "public"
	}
	return "private"
}

// register keeps the fencing token in routes.AzureFenceTag on both NICs
// (both nodes name both), written with If-Match on the NIC's ETag and
// never over a higher token.
func (m *azureMover) register() routes.Register {
	nics := []azure.ResourceID{m.local, m.peer}
	get := func(ctx context.Context, id azure.ResourceID) (armnetwork.Interface, uint64, error) {
		resp, err := m.cl.Interfaces.Get(ctx, id.ResourceGroup, id.Name, nil)
		if err != nil {
			return resp.Interface, 0, azErr(err, "Microsoft.Network/networkInterfaces/read", "reading the fencing tag of NIC "+id.Name)
		}
		var have uint64
		if v := resp.Tags[routes.AzureFenceTag]; v != nil {
			have, _ = strconv.ParseUint(*v, 10, 64)
		}
		return resp.Interface, have, nil
	}
	return routes.Register{
		What: "NICs " + m.local.Name + " and " + m.peer.Name,
		Read: func(ctx context.Context) (uint64, string, error) {
			var best uint64
			where := ""
			for _, id := range nics {
				_, have, err := get(ctx, id)
				if err != nil {
					return 0, "", err
				}
				if have > best {
					best, where = have, "NIC "+id.Name
				}
			}
			return best, where, nil
		},
		Write: func(ctx context.Context, token uint64) error {
			for _, id := range nics {
				nic, have, err := get(ctx, id)
				if err != nil {
					return err
				}
				if have > token {
					return fmt.Errorf("NIC %s was written under fencing token %d, this node holds %d: %w", id.Name, have, token, routes.ErrStale)
				}
				tags := maps.Clone(nic.Tags)
				if tags == nil {
					tags = map[string]*string{}
				}
				tags[routes.AzureFenceTag] = to.Ptr(strconv.FormatUint(token, 10))
				wctx := ctx
				if nic.Etag != nil {
					wctx = policy.WithHTTPHeader(ctx, http.Header{"If-Match": []string{*nic.Etag}})
				}
				if _, err := m.cl.Interfaces.UpdateTags(wctx, id.ResourceGroup, id.Name, armnetwork.TagsObject{Tags: tags}, nil); err != nil {
					if azure.Status(err) == http.StatusPreconditionFailed {
						return fmt.Errorf("NIC %s changed while recording fencing token %d: %w", id.Name, token, routes.ErrStale)
					}
					return azErr(err, "Microsoft.Network/networkInterfaces/write", "recording the fencing token on NIC "+id.Name)
				}
			}
			return nil
		},
	}
}
