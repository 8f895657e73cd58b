package addresses

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6/fake"
	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/aws/awstest"
	"github.com/batonha/baton/internal/provider/azure"
	"github.com/batonha/baton/internal/retry"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	localENI = "eni-0000000000000000a"
	peerENI  = "eni-0000000000000000b"
	alloc    = "eipalloc-0000000000000001"
)

func opts(fk *clock.Fake) Options {
	return Options{Clock: fk, Backoff: retry.Backoff{Base: 100 * time.Millisecond, Max: time.Second, Attempts: 4, Jitter: func(c time.Duration) time.Duration { return c }}}
}

// drive runs fn, advancing the fake clock whenever a backoff waits on it.
func drive(t *testing.T, fk *clock.Fake, fn func() error) error {
	t.Helper()
	err := fk.Drive(50*time.Millisecond, 20*time.Second, fn)
	if errors.Is(err, clock.ErrNotDone) {
		t.Fatal(err)
	}
	return err
}

func awsSetup(t *testing.T) (*awstest.Fake, Config) {
	f := awstest.New()
	f.AddENI(localENI, "10.0.1.10")
	f.AddENI(peerENI, "10.0.1.11", "10.0.1.50", "10.0.1.51")
	f.AddAddress(alloc, "198.51.100.7", peerENI)
	cfg := Config{Cloud: "aws", AWS: &AWS{LocalENI: localENI, PrivateIPs: []string{"10.0.1.50", "10.0.1.51"}, ElasticIPs: []ElasticIP{{AllocationID: alloc}}}}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return f, cfg
}

// The fake enforces AllowReassignment and AllowReassociation as AWS does
// (moto ignores AllowReassignment), so this proves both flags are sent.
func TestAWSMoveAddresses(t *testing.T) {
	fk := clock.NewFake(epoch)
	f, cfg := awsSetup(t)
	a, err := NewAWS(cfg, f, opts(fk))
	if err != nil {
		t.Fatal(err)
	}
	if err := drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{Term: 1}) }); err != nil {
		t.Fatal(err)
	}
	if got := f.IPs(localENI); fmt.Sprint(got) != "[10.0.1.10 10.0.1.50 10.0.1.51]" {
		t.Errorf("local ENI IPs %v", got)
	}
	if got := f.IPs(peerENI); fmt.Sprint(got) != "[10.0.1.11]" {
		t.Errorf("peer ENI kept %v", got)
	}
	if f.AddressENI(alloc) != localENI {
		t.Error("Elastic IP not moved")
	}
	if st := a.Status(); len(st) != 3 {
		t.Errorf("status %+v", st)
	}
	// Idempotent, and Verify repairs a moved-away EIP.
	f.AddAddress(alloc, "198.51.100.7", peerENI)
	if err := drive(t, fk, func() error { return a.Verify(context.Background(), true) }); err != nil {
		t.Fatal(err)
	}
	if f.AddressENI(alloc) != localENI {
		t.Error("Verify did not repair the Elastic IP")
	}
}

func TestAWSThrottledAndDenied(t *testing.T) {
	fk := clock.NewFake(epoch)
	f, cfg := awsSetup(t)
	var n atomic.Int32
	f.SetFault(func(op string, in any) error {
		if op == "AssignPrivateIpAddresses" && n.Add(1) <= 2 {
			return awstest.APIError("RequestLimitExceeded", "Request limit exceeded.")
		}
		if op == "AssociateAddress" {
			return awstest.APIError("UnauthorizedOperation", "not authorized")
		}
		return nil
	})
	a, _ := NewAWS(cfg, f, opts(fk))
	err := drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{}) })
	if err == nil || !strings.Contains(err.Error(), "ec2:AssociateAddress") || !strings.Contains(err.Error(), alloc) {
		t.Fatalf("error %v, want the missing permission and the allocation", err)
	}
	if got := f.IPs(localENI); len(got) != 3 {
		t.Errorf("private IPs not moved after throttling: %v", got)
	}
	if fk.Now().Sub(epoch) < 300*time.Millisecond {
		t.Error("no backoff between throttled attempts")
	}
}

func TestAWSMissingENI(t *testing.T) {
	fk := clock.NewFake(epoch)
	f, cfg := awsSetup(t)
	cfg.AWS.LocalENI = "eni-0000000000000dead"
	a, _ := NewAWS(cfg, f, opts(fk))
	err := drive(t, fk, func() error { return a.Check(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), "eni-0000000000000dead") || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Check = %v", err)
	}
}

func TestMotoMoveAddresses(t *testing.T) {
	url := awstest.StartMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := awstest.MotoClient(url)
	p := awstest.BuildPair(ctx, t, c)
	if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: awssdk.String(p.PeerENI), PrivateIpAddresses: []string{"10.0.1.50"}}); err != nil {
		t.Fatal(err)
	}
	eip, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: eip.AllocationId, NetworkInterfaceId: awssdk.String(p.PeerENI)}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Cloud: "aws", AWS: &AWS{LocalENI: p.LocalENI, PrivateIPs: []string{"10.0.1.50"}, ElasticIPs: []ElasticIP{{PublicIP: *eip.PublicIp, PrivateIP: p.LocalIP}}}}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	o := opts(clock.NewFake(epoch))
	o.Backoff.Attempts = 1
	a, err := NewAWS(cfg, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Activate(ctx, action.Takeover{Term: 1}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{*eip.AllocationId}})
	if err != nil {
		t.Fatal(err)
	}
	if got := awssdk.ToString(out.Addresses[0].NetworkInterfaceId); got != p.LocalENI {
		t.Errorf("EIP on %s, want %s", got, p.LocalENI)
	}
	ni, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{p.LocalENI}})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ip := range ni.NetworkInterfaces[0].PrivateIpAddresses {
		found = found || awssdk.ToString(ip.PrivateIpAddress) == "10.0.1.50"
	}
	if !found {
		t.Error("secondary IP not on the local ENI")
	}
	// moto ignores AllowReassignment (the IP stays on the peer ENI too);
	// TestAWSMoveAddresses covers the release with the awstest fake.
}

// --- Azure, through the SDK's fake transports ---

const sub = "00000000-0000-0000-0000-000000000001"

func nicID(name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/%s", sub, name)
}

func pipID(name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/%s", sub, name)
}

type azNICs struct {
	mu    sync.Mutex
	nics  map[string]armnetwork.Interface
	fault func(nic string) (int, string)
	puts  []string
}

func ipc(name, ip string, primary bool, pip string) *armnetwork.InterfaceIPConfiguration {
	c := &armnetwork.InterfaceIPConfiguration{Name: to.Ptr(name), Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
		PrivateIPAddress: to.Ptr(ip), Primary: to.Ptr(primary), Subnet: &armnetwork.Subnet{ID: to.Ptr("/subscriptions/x/subnets/s1")},
	}}
	if pip != "" {
		c.Properties.PublicIPAddress = &armnetwork.PublicIPAddress{ID: to.Ptr(pip)}
	}
	return c
}

func newAzNICs() *azNICs {
	return &azNICs{nics: map[string]armnetwork.Interface{
		"nic-a": {ID: to.Ptr(nicID("nic-a")), Properties: &armnetwork.InterfacePropertiesFormat{IPConfigurations: []*armnetwork.InterfaceIPConfiguration{ipc("ipconfig1", "10.1.0.4", true, "")}}},
		"nic-b": {ID: to.Ptr(nicID("nic-b")), Properties: &armnetwork.InterfacePropertiesFormat{IPConfigurations: []*armnetwork.InterfaceIPConfiguration{
			ipc("ipconfig1", "10.1.0.5", true, pipID("pip-vip")), ipc("vip", "10.1.0.100", false, ""),
		}}},
	}}
}

func (z *azNICs) factory() *fake.ServerFactory {
	return &fake.ServerFactory{
		InterfacesServer: fake.InterfacesServer{
			Get: func(ctx context.Context, rg, name string, _ *armnetwork.InterfacesClientGetOptions) (resp azfake.Responder[armnetwork.InterfacesClientGetResponse], errResp azfake.ErrorResponder) {
				z.mu.Lock()
				defer z.mu.Unlock()
				nic, ok := z.nics[name]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "NotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armnetwork.InterfacesClientGetResponse{Interface: nic}, nil)
				return
			},
			BeginCreateOrUpdate: func(ctx context.Context, rg, name string, nic armnetwork.Interface, _ *armnetwork.InterfacesClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armnetwork.InterfacesClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				z.mu.Lock()
				defer z.mu.Unlock()
				z.puts = append(z.puts, name)
				if z.fault != nil {
					if code, ec := z.fault(name); code != 0 {
						errResp.SetResponseError(code, ec)
						return
					}
				}
				// Azure refuses an IP still held by another NIC.
				for other, o := range z.nics {
					if other == name {
						continue
					}
					for _, c := range configs(o) {
						for _, n := range configs(nic) {
							if privateIP(c) == privateIP(n) || (publicID(c) != "" && strings.EqualFold(publicID(c), publicID(n))) {
								errResp.SetResponseError(http.StatusBadRequest, "PrivateIPAddressInUse")
								return
							}
						}
					}
				}
				z.nics[name] = nic
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
				resp.SetTerminalResponse(http.StatusOK, armnetwork.InterfacesClientCreateOrUpdateResponse{Interface: nic}, nil)
				return
			},
			UpdateTags: func(ctx context.Context, rg, name string, params armnetwork.TagsObject, _ *armnetwork.InterfacesClientUpdateTagsOptions) (resp azfake.Responder[armnetwork.InterfacesClientUpdateTagsResponse], errResp azfake.ErrorResponder) {
				z.mu.Lock()
				defer z.mu.Unlock()
				nic := z.nics[name]
				nic.Tags = params.Tags
				z.nics[name] = nic
				resp.SetResponse(http.StatusOK, armnetwork.InterfacesClientUpdateTagsResponse{Interface: nic}, nil)
				return
			},
		},
		PublicIPAddressesServer: fake.PublicIPAddressesServer{
			Get: func(ctx context.Context, rg, name string, _ *armnetwork.PublicIPAddressesClientGetOptions) (resp azfake.Responder[armnetwork.PublicIPAddressesClientGetResponse], errResp azfake.ErrorResponder) {
				if name != "pip-vip" {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armnetwork.PublicIPAddressesClientGetResponse{PublicIPAddress: armnetwork.PublicIPAddress{ID: to.Ptr(pipID(name))}}, nil)
				return
			},
		},
	}
}

func newAzureAction(t *testing.T, z *azNICs, fk *clock.Fake, mod func(*Azure)) *Action {
	t.Helper()
	cfg := Config{Cloud: "azure", Azure: &Azure{SubscriptionID: sub, LocalNIC: nicID("nic-a"), PeerNIC: nicID("nic-b"), PrivateIPs: []string{"10.1.0.100"}, PublicIPs: []string{pipID("pip-vip")}}}
	if mod != nil {
		mod(cfg.Azure)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	cl, err := azure.New(azure.Options{SubscriptionID: sub, Credential: &azfake.TokenCredential{}, Transport: fake.NewServerFactoryTransport(z.factory()), PollFrequency: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAzure(cfg, cl, opts(fk))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAzureMoveIPConfigAndPublicIP(t *testing.T) {
	fk := clock.NewFake(epoch)
	z := newAzNICs()
	n := 0
	z.fault = func(nic string) (int, string) {
		if nic == "nic-a" && n == 0 {
			n++
			return http.StatusConflict, "AnotherOperationInProgress"
		}
		return 0, ""
	}
	a := newAzureAction(t, z, fk, nil)
	if err := drive(t, fk, func() error { return a.Check(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	if err := drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{Term: 1}) }); err != nil {
		t.Fatal(err)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	local, peer := z.nics["nic-a"], z.nics["nic-b"]
	if len(configs(local)) != 2 || privateIP(configs(local)[1]) != "10.1.0.100" || *configs(local)[1].Name != "vip" {
		t.Errorf("local NIC ipConfigurations: %d, want the moved one named vip", len(configs(local)))
	}
	if !strings.EqualFold(publicID(configs(local)[0]), pipID("pip-vip")) {
		t.Error("public IP not on the local primary ipConfiguration")
	}
	if len(configs(peer)) != 1 || publicID(configs(peer)[0]) != "" {
		t.Error("peer NIC still holds the addresses")
	}
	if fmt.Sprint(z.puts) != "[nic-b nic-a nic-a]" {
		t.Errorf("NIC updates %v, want peer released first and the conflict retried", z.puts)
	}
}

func TestAzurePrimaryCannotMove(t *testing.T) {
	fk := clock.NewFake(epoch)
	z := newAzNICs()
	a := newAzureAction(t, z, fk, func(c *Azure) { c.PrivateIPs = []string{"10.1.0.5"}; c.PublicIPs = nil })
	err := drive(t, fk, func() error { return a.Activate(context.Background(), action.Takeover{}) })
	if err == nil || !strings.Contains(err.Error(), "primary") {
		t.Fatalf("error %v, want a refusal to move the primary ipConfiguration", err)
	}
}

func TestAzureMissingPublicIP(t *testing.T) {
	fk := clock.NewFake(epoch)
	z := newAzNICs()
	a := newAzureAction(t, z, fk, func(c *Azure) { c.PublicIPs = []string{pipID("pip-ghost")} })
	err := drive(t, fk, func() error { return a.Check(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), "pip-ghost") {
		t.Fatalf("Check = %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, x := range []struct {
		cfg  Config
		want string
	}{
		{Config{Cloud: "gcp"}, "addresses.cloud"},
		{Config{Cloud: "aws", AWS: &AWS{LocalENI: "eth0", PrivateIPs: []string{"10.0.0.1"}}}, "addresses.aws.local_eni"},
		{Config{Cloud: "aws", AWS: &AWS{LocalENI: localENI, ElasticIPs: []ElasticIP{{AllocationID: alloc, PublicIP: "1.2.3.4"}}}}, "addresses.aws.elastic_ips[0]: allocation_id and public_ip are exclusive"},
		{Config{Cloud: "aws", AWS: &AWS{LocalENI: localENI, PrivateIPs: []string{"10.0.0.300"}}}, "addresses.aws.private_ips[0]"},
		{Config{Cloud: "azure", Azure: &Azure{SubscriptionID: sub, LocalNIC: nicID("a"), PeerNIC: "/bad", PrivateIPs: []string{"10.0.0.1"}}}, "addresses.azure.peer_nic"},
	} {
		errs := x.cfg.Validate()
		if !strings.Contains(fmt.Sprint(errs), x.want) {
			t.Errorf("Validate(%+v) = %v, want %q", x.cfg, errs, x.want)
		}
	}
}

// A stale active (a lower fencing token) neither moves the addresses of
// the newer active back, at takeover or at verify, nor lowers the token.
func TestAWSFencedMoves(t *testing.T) {
	fk := clock.NewFake(epoch)
	f, cfg := awsSetup(t)
	stale, err := NewAWS(cfg, f, opts(fk))
	if err != nil {
		t.Fatal(err)
	}
	if err := drive(t, fk, func() error { return stale.Activate(context.Background(), action.Takeover{Term: 1, Token: 5}) }); err != nil {
		t.Fatal(err)
	}
	// The peer takes over under token 6.
	ncfg := cfg
	naws := *cfg.AWS
	naws.LocalENI = peerENI
	ncfg.AWS = &naws
	newer, err := NewAWS(ncfg, f, opts(fk))
	if err != nil {
		t.Fatal(err)
	}
	if err := drive(t, fk, func() error { return newer.Activate(context.Background(), action.Takeover{Term: 2, Token: 6}) }); err != nil {
		t.Fatal(err)
	}
	if f.AddressENI(alloc) != peerENI {
		t.Fatal("the newer active did not get the Elastic IP")
	}
	for name, fn := range map[string]func() error{
		"verify":   func() error { return stale.Verify(context.Background(), true) },
		"takeover": func() error { return stale.Activate(context.Background(), action.Takeover{Term: 1, Token: 5}) },
	} {
		err := drive(t, fk, fn)
		if !errors.Is(err, routes.ErrStale) || !errors.Is(err, action.ErrFault) {
			t.Fatalf("stale %s: got %v, want a fault wrapping ErrStale", name, err)
		}
		if f.AddressENI(alloc) != peerENI || fmt.Sprint(f.IPs(peerENI)) != "[10.0.1.11 10.0.1.50 10.0.1.51]" {
			t.Fatalf("stale %s moved addresses back: EIP on %s, peer ENI %v", name, f.AddressENI(alloc), f.IPs(peerENI))
		}
	}
}

func TestAzureFencedMoves(t *testing.T) {
	fk := clock.NewFake(epoch)
	z := newAzNICs()
	stale := newAzureAction(t, z, fk, nil)
	if err := drive(t, fk, func() error { return stale.Activate(context.Background(), action.Takeover{Term: 1, Token: 5}) }); err != nil {
		t.Fatal(err)
	}
	newer := newAzureAction(t, z, fk, func(a *Azure) { a.LocalNIC, a.PeerNIC = a.PeerNIC, a.LocalNIC })
	if err := drive(t, fk, func() error { return newer.Activate(context.Background(), action.Takeover{Term: 2, Token: 6}) }); err != nil {
		t.Fatal(err)
	}
	holder := func() string {
		for name, nic := range z.nics {
			for _, c := range configs(nic) {
				if privateIP(c) == "10.1.0.100" {
					return name
				}
			}
		}
		return ""
	}
	if holder() != "nic-b" {
		t.Fatalf("the newer active does not hold 10.1.0.100 (%s)", holder())
	}
	err := drive(t, fk, func() error { return stale.Verify(context.Background(), true) })
	if !errors.Is(err, routes.ErrStale) || !errors.Is(err, action.ErrFault) {
		t.Fatalf("stale verify: got %v, want a fault wrapping ErrStale", err)
	}
	if holder() != "nic-b" {
		t.Fatal("the stale node moved 10.1.0.100 back")
	}
	for _, n := range []string{"nic-a", "nic-b"} {
		if v := z.nics[n].Tags[routes.AzureFenceTag]; v == nil || *v != "6" {
			t.Errorf("%s fencing tag %v, want 6", n, v)
		}
	}
}
