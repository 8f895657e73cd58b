package routes

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/batonha/baton/internal/provider/azure"
)

// Config is the `routes:` section of baton.yaml.
type Config struct {
	Cloud string `yaml:"cloud"` // aws|azure
	AWS   *AWS   `yaml:"aws"`
	Azure *Azure `yaml:"azure"`
	// Concurrency bounds the cloud calls in flight at once (the routes of
	// every table change in parallel), default 16; it shrinks by itself
	// while the cloud throttles.
	Concurrency int `yaml:"concurrency"`
	// Reconcile is how often an active node re-checks its routes
	// (the pipeline calls Verify), default 30s.
	Reconcile time.Duration `yaml:"reconcile"`
	// StateDir holds the capture file routes.json; default node.state_dir.
	StateDir string `yaml:"state_dir"`
	// Attempts per cloud call before giving up, default 6.
	Attempts int `yaml:"attempts"`
}

// AWS selects route tables and routes in one VPC region.
//
// Tables come from table_ids, or from tags (optionally narrowed by vpc);
// not both. Routes moved on takeover are: every destination listed, every
// route whose target is the peer when peer_targets is set, and every route
// this node captured while it was active (give-back).
type AWS struct {
	Region        string            `yaml:"region"`
	Endpoint      string            `yaml:"endpoint"` // tests only: EC2 endpoint URL
	TableIDs      []string          `yaml:"table_ids"`
	Tags          map[string]string `yaml:"tags"`
	VPC           string            `yaml:"vpc"`
	Destinations  []string          `yaml:"destinations"`
	PeerTargets   bool              `yaml:"peer_targets"`
	PeerENI       string            `yaml:"peer_eni"`
	PeerInstance  string            `yaml:"peer_instance"`
	LocalENI      string            `yaml:"local_eni"`
	LocalInstance string            `yaml:"local_instance"` // optional: routes via this instance count as ours
	CreateMissing bool              `yaml:"create_missing"`
}

// Azure selects route tables (UDRs) in one subscription. Routes of next-hop
// type VirtualAppliance whose next hop is the peer's IP move to this node's
// IP; listed destinations and captured routes move whatever they point at.
type Azure struct {
	SubscriptionID string            `yaml:"subscription_id"`
	TableIDs       []string          `yaml:"table_ids"` // full ARM resource IDs
	Tags           map[string]string `yaml:"tags"`
	ResourceGroup  string            `yaml:"resource_group"` // narrows tag discovery
	Destinations   []string          `yaml:"destinations"`
	PeerTargets    bool              `yaml:"peer_targets"`
	PeerIP         string            `yaml:"peer_ip"`
	LocalIP        string            `yaml:"local_ip"`
	CreateMissing  bool              `yaml:"create_missing"`
	Endpoint       string            `yaml:"endpoint"` // tests only: Resource Manager URL
}

var (
	reRTB  = regexp.MustCompile(`^rtb-[0-9a-f]{8,17}$`)
	reENI  = regexp.MustCompile(`^eni-[0-9a-f]{8,17}$`)
	reInst = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
	reVPC  = regexp.MustCompile(`^vpc-[0-9a-f]{8,17}$`)
	reUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// Validate returns every problem found, each prefixed with its key path
// ("routes.aws.table_ids[0]: ...").
func (c Config) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Cloud {
	case "aws":
		if c.AWS == nil {
			add("routes.aws: required when cloud is aws")
		}
		if c.Azure != nil {
			add("routes.azure: set, but cloud is aws")
		}
	case "azure":
		if c.Azure == nil {
			add("routes.azure: required when cloud is azure")
		}
		if c.AWS != nil {
			add("routes.aws: set, but cloud is azure")
		}
	default:
		add("routes.cloud: %q is not aws or azure", c.Cloud)
	}
	if c.Concurrency < 0 || c.Concurrency > 256 {
		add("routes.concurrency: %d is outside 0..256", c.Concurrency)
	}
	if c.Reconcile < 0 {
		add("routes.reconcile: %s is negative", c.Reconcile)
	}
	if c.Attempts < 0 || c.Attempts > 100 {
		add("routes.attempts: %d is outside 0..100", c.Attempts)
	}
	if c.StateDir == "" {
		add("routes.state_dir: required (the capture of owned routes is kept there)")
	}
	if c.AWS != nil {
		errs = append(errs, c.AWS.validate()...)
	}
	if c.Azure != nil {
		errs = append(errs, c.Azure.validate()...)
	}
	return errs
}

func validDestinations(path string, ds []string) []error {
	var errs []error
	seen := map[string]bool{}
	for i, d := range ds {
		p, err := netip.ParsePrefix(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.destinations[%d]: %q is not a CIDR prefix", path, i, d))
			continue
		}
		if p.Masked() != p {
			errs = append(errs, fmt.Errorf("%s.destinations[%d]: %q has host bits set (want %s)", path, i, d, p.Masked()))
		}
		if seen[p.String()] {
			errs = append(errs, fmt.Errorf("%s.destinations[%d]: %q is listed twice", path, i, d))
		}
		seen[p.String()] = true
	}
	return errs
}

func (a *AWS) validate() []error {
	var errs []error
	add := func(format string, v ...any) { errs = append(errs, fmt.Errorf(format, v...)) }
	if len(a.TableIDs) > 0 && len(a.Tags) > 0 {
		add("routes.aws: table_ids and tags are exclusive; name tables by ID or by tag, not both")
	}
	if len(a.TableIDs) == 0 && len(a.Tags) == 0 {
		add("routes.aws: one of table_ids or tags is required")
	}
	if len(a.TableIDs) > 0 && a.VPC != "" {
		add("routes.aws.vpc: only narrows tag discovery; remove it or use tags instead of table_ids")
	}
	seen := map[string]bool{}
	for i, id := range a.TableIDs {
		if !reRTB.MatchString(id) {
			add("routes.aws.table_ids[%d]: %q is not a route table ID (rtb-…)", i, id)
		}
		if seen[id] {
			add("routes.aws.table_ids[%d]: %q is listed twice", i, id)
		}
		seen[id] = true
	}
	for k := range a.Tags {
		if k == "" {
			add("routes.aws.tags: empty tag key")
		}
	}
	if a.VPC != "" && !reVPC.MatchString(a.VPC) {
		add("routes.aws.vpc: %q is not a VPC ID (vpc-…)", a.VPC)
	}
	if a.LocalENI == "" {
		add("routes.aws.local_eni: required (routes are pointed at this ENI)")
	} else if !reENI.MatchString(a.LocalENI) {
		add("routes.aws.local_eni: %q is not an ENI ID (eni-…)", a.LocalENI)
	}
	if a.LocalInstance != "" && !reInst.MatchString(a.LocalInstance) {
		add("routes.aws.local_instance: %q is not an instance ID (i-…)", a.LocalInstance)
	}
	if a.PeerENI != "" && !reENI.MatchString(a.PeerENI) {
		add("routes.aws.peer_eni: %q is not an ENI ID (eni-…)", a.PeerENI)
	}
	if a.PeerInstance != "" && !reInst.MatchString(a.PeerInstance) {
		add("routes.aws.peer_instance: %q is not an instance ID (i-…)", a.PeerInstance)
	}
	if a.PeerENI != "" && a.PeerENI == a.LocalENI {
		add("routes.aws.peer_eni: equals local_eni %q", a.LocalENI)
	}
	if a.PeerTargets && a.PeerENI == "" && a.PeerInstance == "" {
		add("routes.aws.peer_targets: needs peer_eni or peer_instance to recognise the peer's routes")
	}
	errs = append(errs, validDestinations("routes.aws", a.Destinations)...)
	return errs
}

func (z *Azure) validate() []error {
	var errs []error
	add := func(format string, v ...any) { errs = append(errs, fmt.Errorf(format, v...)) }
	if !reUUID.MatchString(z.SubscriptionID) {
		add("routes.azure.subscription_id: %q is not a subscription GUID", z.SubscriptionID)
	}
	if len(z.TableIDs) > 0 && len(z.Tags) > 0 {
		add("routes.azure: table_ids and tags are exclusive; name tables by ID or by tag, not both")
	}
	if len(z.TableIDs) == 0 && len(z.Tags) == 0 {
		add("routes.azure: one of table_ids or tags is required")
	}
	if len(z.TableIDs) > 0 && z.ResourceGroup != "" {
		add("routes.azure.resource_group: only narrows tag discovery; remove it or use tags instead of table_ids")
	}
	seen := map[string]bool{}
	for i, id := range z.TableIDs {
		r, err := azure.ParseID(id, "Microsoft.Network/routeTables")
		if err != nil {
			add("routes.azure.table_ids[%d]: %w", i, err)
			continue
		}
		if z.SubscriptionID != "" && !equalFoldASCII(r.Subscription, z.SubscriptionID) {
			add("routes.azure.table_ids[%d]: subscription %s differs from subscription_id %s", i, r.Subscription, z.SubscriptionID)
		}
		if seen[id] {
			add("routes.azure.table_ids[%d]: %q is listed twice", i, id)
		}
		seen[id] = true
	}
	local, errL := netip.ParseAddr(z.LocalIP)
	if z.LocalIP == "" {
		add("routes.azure.local_ip: required (routes get this next-hop IP)")
	} else if errL != nil {
		add("routes.azure.local_ip: %q is not an IP address", z.LocalIP)
	}
	if z.PeerIP != "" {
		peer, err := netip.ParseAddr(z.PeerIP)
		if err != nil {
			add("routes.azure.peer_ip: %q is not an IP address", z.PeerIP)
		} else if errL == nil && peer == local {
			add("routes.azure.peer_ip: equals local_ip %s", z.LocalIP)
		}
	}
	if z.PeerTargets && z.PeerIP == "" {
		add("routes.azure.peer_targets: needs peer_ip to recognise the peer's routes")
	}
	errs = append(errs, validDestinations("routes.azure", z.Destinations)...)
	return errs
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}
