package routes

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/batonha/baton/internal/config/rule"
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
	return rule.Errors("routes", func(report func(key, msg string)) { c.rules(rule.New(report)) })
}

// rules reports every problem with a key relative to the section.
func (c Config) rules(r *rule.Report) {
	switch c.Cloud {
	case "aws":
		if c.AWS == nil {
			r.Errorf("aws", "required when cloud is aws")
		}
		if c.Azure != nil {
			r.Errorf("azure", "set, but cloud is aws")
		}
	case "azure":
		if c.Azure == nil {
			r.Errorf("azure", "required when cloud is azure")
		}
		if c.AWS != nil {
			r.Errorf("aws", "set, but cloud is azure")
		}
	default:
		r.Errorf("cloud", "%q is not aws or azure", c.Cloud)
	}
	if c.Concurrency < 0 || c.Concurrency > 256 {
		r.Errorf("concurrency", "%d is outside 0..256", c.Concurrency)
	}
	if c.Reconcile < 0 {
		r.Errorf("reconcile", "%s is negative", c.Reconcile)
	}
	if c.Attempts < 0 || c.Attempts > 100 {
		r.Errorf("attempts", "%d is outside 0..100", c.Attempts)
	}
	if c.StateDir == "" {
		r.Errorf("state_dir", "required (the capture of owned routes is kept there)")
	}
	if c.AWS != nil {
		c.AWS.rules(r.At("aws"))
	}
	if c.Azure != nil {
		c.Azure.rules(r.At("azure"))
	}
}

func validDestinations(r *rule.Report, ds []string) {
	seen := map[string]bool{}
	for i, d := range ds {
		p, err := netip.ParsePrefix(d)
		if err != nil {
			r.Errorf(fmt.Sprintf("destinations[%d]", i), "%q is not a CIDR prefix", d)
			continue
		}
		if p.Masked() != p {
			r.Errorf(fmt.Sprintf("destinations[%d]", i), "%q has host bits set (want %s)", d, p.Masked())
		}
		if seen[p.String()] {
			r.Errorf(fmt.Sprintf("destinations[%d]", i), "%q is listed twice", d)
		}
		seen[p.String()] = true
	}
}

func (a *AWS) rules(r *rule.Report) {
	if len(a.TableIDs) > 0 && len(a.Tags) > 0 {
		r.Errorf("", "table_ids and tags are exclusive; name tables by ID or by tag, not both")
	}
	if len(a.TableIDs) == 0 && len(a.Tags) == 0 {
		r.Errorf("", "one of table_ids or tags is required")
	}
	if len(a.TableIDs) > 0 && a.VPC != "" {
		r.Errorf("vpc", "only narrows tag discovery; remove it or use tags instead of table_ids")
	}
	seen := map[string]bool{}
	for i, id := range a.TableIDs {
		if !reRTB.MatchString(id) {
			r.Errorf(fmt.Sprintf("table_ids[%d]", i), "%q is not a route table ID (rtb-…)", id)
		}
		if seen[id] {
			r.Errorf(fmt.Sprintf("table_ids[%d]", i), "%q is listed twice", id)
		}
		seen[id] = true
	}
	for k := range a.Tags {
		if k == "" {
			r.Errorf("tags", "empty tag key")
		}
	}
	if a.VPC != "" && !reVPC.MatchString(a.VPC) {
		r.Errorf("vpc", "%q is not a VPC ID (vpc-…)", a.VPC)
	}
	if a.LocalENI == "" {
		r.Errorf("local_eni", "required (routes are pointed at this ENI)")
	} else if !reENI.MatchString(a.LocalENI) {
		r.Errorf("local_eni", "%q is not an ENI ID (eni-…)", a.LocalENI)
	}
	if a.LocalInstance != "" && !reInst.MatchString(a.LocalInstance) {
		r.Errorf("local_instance", "%q is not an instance ID (i-…)", a.LocalInstance)
	}
	if a.PeerENI != "" && !reENI.MatchString(a.PeerENI) {
		r.Errorf("peer_eni", "%q is not an ENI ID (eni-…)", a.PeerENI)
	}
	if a.PeerInstance != "" && !reInst.MatchString(a.PeerInstance) {
		r.Errorf("peer_instance", "%q is not an instance ID (i-…)", a.PeerInstance)
	}
	if a.PeerENI != "" && a.PeerENI == a.LocalENI {
		r.Errorf("peer_eni", "equals local_eni %q", a.LocalENI)
	}
	if a.PeerTargets && a.PeerENI == "" && a.PeerInstance == "" {
		r.Errorf("peer_targets", "needs peer_eni or peer_instance to recognise the peer's routes")
	}
	validDestinations(r, a.Destinations)
}

func (z *Azure) rules(r *rule.Report) {
	if !reUUID.MatchString(z.SubscriptionID) {
		r.Errorf("subscription_id", "%q is not a subscription GUID", z.SubscriptionID)
	}
	if len(z.TableIDs) > 0 && len(z.Tags) > 0 {
		r.Errorf("", "table_ids and tags are exclusive; name tables by ID or by tag, not both")
	}
	if len(z.TableIDs) == 0 && len(z.Tags) == 0 {
		r.Errorf("", "one of table_ids or tags is required")
	}
	if len(z.TableIDs) > 0 && z.ResourceGroup != "" {
		r.Errorf("resource_group", "only narrows tag discovery; remove it or use tags instead of table_ids")
	}
	seen := map[string]bool{}
	for i, id := range z.TableIDs {
		table, err := azure.ParseID(id, "Microsoft.Network/routeTables")
		if err != nil {
			r.Errorf(fmt.Sprintf("table_ids[%d]", i), "%v", err)
			continue
		}
		if z.SubscriptionID != "" && !equalFoldASCII(table.Subscription, z.SubscriptionID) {
			r.Errorf(fmt.Sprintf("table_ids[%d]", i), "subscription %s differs from subscription_id %s", table.Subscription, z.SubscriptionID)
		}
		if seen[id] {
			r.Errorf(fmt.Sprintf("table_ids[%d]", i), "%q is listed twice", id)
		}
		seen[id] = true
	}
	local, errL := netip.ParseAddr(z.LocalIP)
	if z.LocalIP == "" {
		r.Errorf("local_ip", "required (routes get this next-hop IP)")
	} else if errL != nil {
		r.Errorf("local_ip", "%q is not an IP address", z.LocalIP)
	}
	if z.PeerIP != "" {
		peer, err := netip.ParseAddr(z.PeerIP)
		if err != nil {
			r.Errorf("peer_ip", "%q is not an IP address", z.PeerIP)
		} else if errL == nil && peer == local {
			r.Errorf("peer_ip", "equals local_ip %s", z.LocalIP)
		}
	}
	if z.PeerTargets && z.PeerIP == "" {
		r.Errorf("peer_targets", "needs peer_ip to recognise the peer's routes")
	}
	validDestinations(r, z.Destinations)
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
