package vip

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"gopkg.in/yaml.v3"
)

var (
	v4 = netip.MustParsePrefix("10.0.0.100/24")
	v6 = netip.MustParsePrefix("fd00::100/64")
)

func testName(parent string) string { return "vip-" + parent }

func newTest(t *testing.T, cfg Config) (*VIP, *Fake, *clock.Fake, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	f := NewFake()
	clk := clock.NewFake(time.Unix(1000, 0))
	v, err := NewWith(cfg, f, testName, clk, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, f, clk, &logs
}

func baseConfig() Config {
	return Config{
		Addresses:    []Address{{Address: v4.String(), Interface: "eth0"}, {Address: v6.String(), Interface: "eth1"}},
		GARPCount:    3,
		GARPInterval: 100 * time.Millisecond,
	}
}

func count(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

var takeover = action.Takeover{Term: 7, Reason: "peer lost"}

func TestConfigYAMLAndDefaults(t *testing.T) {
	src := `
addresses:
  - {address: 10.0.0.100/24, interface: eth0}
  - {address: "fd00::100", interface: eth1}
garp_interval: 50ms
refresh: 30s
virtual_mac: "02:00:5e:00:01:0a"
conflict_check: true
`
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("valid config rejected: %v", errs)
	}
	if c.GARPCount != DefaultGARPCount || c.GARPInterval != 50*time.Millisecond || c.Refresh != 30*time.Second ||
		c.ConflictTimeout != DefaultConflictTimeout || !c.ConflictCheck || c.Addresses[1].Interface != "eth1" {
		t.Errorf("decoded %+v", c)
	}
}

func TestValidateNamesKeys(t *testing.T) {
	c := Config{
		Addresses: []Address{
			{Address: "10.0.0.300/24", Interface: "eth0"},
			{Address: "10.0.0.1/24", Interface: ""},
			{Address: "10.0.0.1/32", Interface: "a/b"},
			{Address: "ff02::1/128", Interface: "eth0"},
		},
		GARPCount:       -1,
		Refresh:         time.Millisecond,
		VirtualMAC:      "01:00:5e:00:00:01",
		ConflictIgnore:  []string{"zz"},
		ConflictTimeout: time.Hour,
	}
	got := errors.Join(c.Validate()...).Error()
	for _, want := range []string{
		`vip.addresses[0].address: "10.0.0.300/24" is not an address`,
		`vip.addresses[1].interface: required`,
		`vip.addresses[2].interface: "a/b" is not a valid interface name`,
		`vip.addresses[2].address: 10.0.0.1 is already listed as addresses[1]`,
		`vip.addresses[3].address: "ff02::1/128" is not a unicast address`,
		`vip.garp_count: -1 is out of range`,
		`vip.refresh: 1ms is out of range`,
		`vip.virtual_mac: "01:00:5e:00:00:01" is a multicast address`,
		`vip.conflict_ignore[0]: "zz" is not a MAC address`,
		`vip.conflict_timeout: 1h0m0s is out of range`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if errs := (Config{}).WithDefaults().Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "vip.addresses: at least one") {
		t.Errorf("empty config: %v", errs)
	}
	if _, err := NewWith(Config{}, NewFake(), testName, clock.NewFake(time.Now()), slog.Default()); err == nil {
		t.Error("NewWith accepted an empty config")
	}
}

func TestActivateAnnouncesBurstThenRefresh(t *testing.T) {
	cfg := baseConfig()
	cfg.Refresh = 10 * time.Second
	v, f, clk, logs := newTest(t, cfg)
	ctx := context.Background()
	if v.Name() != "vip" {
		t.Errorf("Name() = %q", v.Name())
	}
	if err := v.Activate(ctx, takeover); err != nil {
		t.Fatal(err)
	}
	want := []string{"add eth0 10.0.0.100/24", "add eth1 fd00::100/64", "announce eth0 10.0.0.100", "announce eth1 fd00::100"}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Fatalf("calls:\n%q\nwant\n%q", got, want)
	}
	if !strings.Contains(logs.String(), "component=vip") || !strings.Contains(logs.String(), `reason="peer lost"`) {
		t.Errorf("logs lack component/reason:\n%s", logs)
	}
	// The rest of the burst: GARPCount-1 rounds, GARPInterval apart.
	clk.Advance(99 * time.Millisecond)
	if got := f.Calls(); len(got) != 0 {
		t.Fatalf("announced before the interval: %q", got)
	}
	clk.Advance(time.Millisecond)
	if got := count(f.Calls(), "announce"); got != 2 {
		t.Fatalf("second round: %d announcements, want 2", got)
	}
	clk.Advance(100 * time.Millisecond)
	if got := count(f.Calls(), "announce"); got != 2 {
		t.Fatalf("third round: %d announcements, want 2", got)
	}
	// Burst over: nothing until the refresh.
	clk.Advance(9 * time.Second)
	if got := f.Calls(); len(got) != 0 {
		t.Fatalf("announced between burst and refresh: %q", got)
	}
	clk.Advance(time.Second)
	if got := count(f.Calls(), "announce"); got != 2 {
		t.Fatalf("refresh: %d announcements, want 2", got)
	}
	clk.Advance(10 * time.Second)
	if got := count(f.Calls(), "announce"); got != 2 {
		t.Fatalf("second refresh: %d announcements, want 2", got)
	}

	// Activate again (idempotent): nothing added, a new burst.
	if err := v.Activate(ctx, takeover); err != nil {
		t.Fatal(err)
	}
	if got := f.Calls(); count(got, "add") != 0 || count(got, "announce") != 2 {
		t.Fatalf("second Activate: %q", got)
	}

	// Deactivate removes and stops the schedule.
	if err := v.Deactivate(ctx, action.Takeover{Term: 8, Reason: "switchover"}); err != nil {
		t.Fatal(err)
	}
	if got := f.Calls(); !slices.Equal(got, []string{"remove eth0 10.0.0.100/24", "remove eth1 fd00::100/64"}) {
		t.Fatalf("Deactivate calls: %q", got)
	}
	clk.Advance(time.Minute)
	if got := f.Calls(); len(got) != 0 {
		t.Fatalf("announced after Deactivate: %q", got)
	}
	if clk.Pending() != 0 {
		t.Errorf("%d timers still armed after Deactivate", clk.Pending())
	}
	if err := v.Deactivate(ctx, takeover); err != nil || len(f.Calls()) != 0 {
		t.Errorf("second Deactivate not a no-op: %v", err)
	}
}

func TestNoRefreshStopsAfterBurst(t *testing.T) {
	cfg := baseConfig()
	cfg.GARPCount = 1
	v, f, clk, _ := newTest(t, cfg)
	if err := v.Activate(context.Background(), takeover); err != nil {
		t.Fatal(err)
	}
	f.Calls()
	if clk.Pending() != 0 {
		t.Errorf("garp_count 1 without refresh left %d timers", clk.Pending())
	}
	clk.Advance(time.Hour)
	if got := f.Calls(); len(got) != 0 {
		t.Errorf("announced: %q", got)
	}
}

func TestConflictRefused(t *testing.T) {
	cfg := baseConfig()
	cfg.ConflictCheck = true
	v, f, _, logs := newTest(t, cfg)
	third := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x33}
	f.SetConflict(v6.Addr(), third)
	err := v.Activate(context.Background(), takeover)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Activate: %v, want ErrConflict", err)
	}
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Address != v6 || ce.Interface != "eth1" || ce.MAC.String() != third.String() {
		t.Fatalf("conflict error %+v", ce)
	}
	for _, want := range []string{"fd00::100/64", "eth1", "02:00:00:00:00:33", "refusing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := f.Calls(); count(got, "add") != 0 || count(got, "announce") != 0 || count(got, "probe") != 2 {
		t.Errorf("calls after a conflict: %q", got)
	}
	if !strings.Contains(logs.String(), "reason=conflict") {
		t.Errorf("conflict not logged:\n%s", logs)
	}
	// Ignored MACs (the peer) are not conflicts.
	cfg.ConflictIgnore = []string{third.String()}
	v2, f2, _, _ := newTest(t, cfg)
	f2.SetConflict(v6.Addr(), third)
	if err := v2.Activate(context.Background(), takeover); err != nil {
		t.Fatalf("answer from an ignored MAC refused: %v", err)
	}
	// A probe that fails is an error, not a silent pass.
	v3, f3, _, _ := newTest(t, cfg)
	f3.Fail("probe", errors.New("socket: permission denied"))
	if err := v3.Activate(context.Background(), takeover); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("failing probe: %v", err)
	}
}

func TestProbeSkippedForHeldAddress(t *testing.T) {
	cfg := baseConfig()
	cfg.ConflictCheck = true
	v, f, _, _ := newTest(t, cfg)
	f.Put("eth0", v4)
	if err := v.Activate(context.Background(), takeover); err != nil {
		t.Fatal(err)
	}
	got := f.Calls()
	if slices.Contains(got, "probe eth0 10.0.0.100") || !slices.Contains(got, "probe eth1 fd00::100") {
		t.Errorf("calls: %q", got)
	}
}

func TestVerifyRepairsDrift(t *testing.T) {
	v, f, clk, logs := newTest(t, baseConfig())
	ctx := context.Background()
	if err := v.Activate(ctx, takeover); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second) // burst over
	f.Calls()
	if err := v.Verify(ctx, true); err != nil || len(f.Calls()) != 0 {
		t.Fatalf("Verify with nothing to repair: %v", err)
	}
	f.Drop("eth0", v4)
	if err := v.Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	got := f.Calls()
	if !slices.Contains(got, "add eth0 10.0.0.100/24") || count(got, "announce") != 2 {
		t.Fatalf("repair calls: %q", got)
	}
	if !slices.Contains(f.Addresses("eth0"), v4) {
		t.Fatal("address not back")
	}
	if !strings.Contains(logs.String(), "reason=drift") {
		t.Errorf("drift not logged:\n%s", logs)
	}
	// The burst restarts after a repair.
	clk.Advance(100 * time.Millisecond)
	if got := count(f.Calls(), "announce"); got != 2 {
		t.Errorf("no burst after repair: %d", got)
	}
	// Repair that fails is reported.
	f.Drop("eth0", v4)
	f.Fail("add", errors.New("no such device"))
	if err := v.Verify(ctx, true); err == nil || !strings.Contains(err.Error(), "no such device") {
		t.Errorf("failed repair: %v", err)
	}
}

func TestVerifyStandbyRemoves(t *testing.T) {
	v, f, _, _ := newTest(t, baseConfig())
	f.Put("eth1", v6)
	if err := v.Verify(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := f.Calls(); !slices.Equal(got, []string{"remove eth1 fd00::100/64"}) {
		t.Errorf("calls: %q", got)
	}
}

func TestCleanupRemovesStale(t *testing.T) {
	v, f, _, logs := newTest(t, baseConfig())
	f.Put("eth0", v4)
	f.Put("eth0", netip.MustParsePrefix("10.0.0.1/24")) // not ours
	if err := v.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.Addresses("eth0"); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}) {
		t.Errorf("left on eth0: %v", got)
	}
	if !strings.Contains(logs.String(), "stale vip") {
		t.Errorf("not logged:\n%s", logs)
	}
}

func TestVirtualMAC(t *testing.T) {
	cfg := baseConfig()
	cfg.Addresses = append(cfg.Addresses, Address{Address: "10.0.0.101/24", Interface: "eth0"})
	cfg.VirtualMAC = "02:00:5e:00:01:0a"
	v, f, _, _ := newTest(t, cfg)
	ctx := context.Background()
	if err := v.Activate(ctx, takeover); err != nil {
		t.Fatal(err)
	}
	if got := f.Links(); !slices.Equal(got, []string{"vip-eth0 eth0 02:00:5e:00:01:0a", "vip-eth1 eth1 02:00:5e:00:01:0a"}) {
		t.Errorf("links: %q", got)
	}
	if got := f.Addresses("vip-eth0"); len(got) != 2 || len(f.Addresses("eth0")) != 0 {
		t.Errorf("addresses on vip-eth0 %v, on eth0 %v", got, f.Addresses("eth0"))
	}
	if got := f.Calls(); !slices.Contains(got, "announce vip-eth1 fd00::100") {
		t.Errorf("announcements not sent from the macvlan: %q", got)
	}
	if err := v.Deactivate(ctx, takeover); err != nil {
		t.Fatal(err)
	}
	if got := f.Links(); len(got) != 0 {
		t.Errorf("links after Deactivate: %q", got)
	}
	// The virtual MAC answering a probe is the peer, not a conflict.
	cfg.ConflictCheck = true
	v2, f2, _, _ := newTest(t, cfg)
	f2.SetConflict(v4.Addr(), net.HardwareAddr{0x02, 0, 0x5e, 0, 1, 0x0a})
	if err := v2.Activate(ctx, takeover); err != nil {
		t.Errorf("virtual MAC counted as conflict: %v", err)
	}
}

func TestActivateErrors(t *testing.T) {
	for _, op := range []string{"add", "announce", "macvlan", "has"} {
		cfg := baseConfig()
		cfg.VirtualMAC = "02:00:5e:00:01:0a"
		v, f, _, _ := newTest(t, cfg)
		f.Fail(op, errors.New("boom-"+op))
		err := v.Activate(context.Background(), takeover)
		if err == nil || !strings.Contains(err.Error(), "boom-"+op) {
			t.Errorf("%s failing: Activate returned %v", op, err)
		}
	}
}

func TestActivateReportsEachAddressAsAPart(t *testing.T) {
	v, f, _, _ := newTest(t, baseConfig())
	f.Put("eth1", v6) // held already: announced, not a part
	ctx, parts := action.CollectParts(context.Background())
	if err := v.Activate(ctx, takeover); err != nil {
		t.Fatal(err)
	}
	got := parts()
	if len(got) != 1 || got[0].Target != "10.0.0.100/24 on eth0" || !got[0].OK || got[0].Attempts != 1 {
		t.Fatalf("parts %+v, want the one added address", got)
	}
	// A failed announcement is a failed part.
	v2, f2, _, _ := newTest(t, baseConfig())
	f2.Fail("announce", errors.New("no buffer space"))
	ctx, parts = action.CollectParts(context.Background())
	if err := v2.Activate(ctx, takeover); err == nil {
		t.Fatal("Activate succeeded with failing announcements")
	}
	got = parts()
	if len(got) != 2 || got[0].OK || !strings.Contains(got[0].Error, "no buffer space") || got[1].Target != "fd00::100/64 on eth1" {
		t.Fatalf("parts %+v, want both addresses failed", got)
	}
}
