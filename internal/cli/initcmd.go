package cli

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/pki"
	"github.com/batonha/baton/internal/policy"
	"github.com/batonha/baton/internal/provider/azure"
	"github.com/batonha/baton/internal/store"
)

// initPath is one heartbeat path given by --addresses: a name and each
// node's address on it.
type initPath struct {
	name string
	addr [2]netip.Addr
}

// pathsFlag collects repeated --addresses values.
type pathsFlag []initPath

func (p *pathsFlag) String() string { return "" }

// Set parses "[NAME=]ADDR_A,ADDR_B".
func (p *pathsFlag) Set(v string) error {
	name := fmt.Sprintf("hb%d", len(*p)+1)
	if i := strings.IndexByte(v, '='); i >= 0 {
		name, v = v[:i], v[i+1:]
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`).MatchString(name) {
			return fmt.Errorf("path name %q: use 1 to 32 letters, digits, '_' or '-'", name)
		}
	}
	parts := strings.Split(v, ",")
	if len(parts) != 2 {
		return fmt.Errorf("%q: give one address per node, in --nodes order: ADDR_A,ADDR_B", v)
	}
	var ip initPath
	ip.name = name
	for i, s := range parts {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not an IP address", s)
		}
		ip.addr[i] = a.Unmap()
	}
	if ip.addr[0] == ip.addr[1] {
		return fmt.Errorf("both nodes have address %s", ip.addr[0])
	}
	if ip.addr[0].Is4() != ip.addr[1].Is4() {
		return fmt.Errorf("%s and %s are of different IP families", ip.addr[0], ip.addr[1])
	}
	for _, q := range *p {
		if q.name == ip.name {
			return fmt.Errorf("path name %q is given twice", name)
		}
	}
	*p = append(*p, ip)
	return nil
}

// initSpec is everything `baton init` was asked for, checked.
type initSpec struct {
	cloud, steer string
	nodes        [2]string
	paths        []initPath
	etc          string
	// steering details
	region, subscription, resourceGroup string
	tag                                 [2]string // routes: tables found by this tag
	destinations                        []string
	enis, nics                          [2]string
	nextHops                            [2]netip.Addr
	vip                                 netip.Prefix
	iface                               string
	asn, peerASN                        int
	bgpPeers                            []netip.Addr
	prefixes                            []string
}

var (
	reInitENI  = regexp.MustCompile(`^eni-[0-9a-f]{8,17}$`)
	reInitUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	reInitIf   = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,15}$`)
	reInitTag  = regexp.MustCompile(`^[A-Za-z0-9._:/+-]{1,128}=[A-Za-z0-9._:/+@ -]{0,256}$`)
)

// cmdInit writes a pair's starting configuration: the shared keys (as
// keygen), both nodes' baton.yaml and, for route and address steering in a
// cloud, the permission policy (as `baton policy`). Every flag is checked
// before anything is written; every file written passes `baton validate`.
func cmdInit(e env, args []string) int {
	fs := newFlags(e, "init", "--cloud azure|aws|kvm --steer probe|routes|vip|bgp --nodes A,B --addresses [NAME=]ADDR_A,ADDR_B [--addresses ...] [--dir DIR] [--force] [steering flags]")
	cloud := fs.String("cloud", "", "where the pair runs: azure, aws or kvm")
	steer := fs.String("steer", "", "how traffic follows the active node: probe (a load balancer's health probe), routes (cloud route tables), vip (a virtual IP; in a cloud: a secondary private IP moved by the cloud's API) or bgp (announcements to a route server)")
	nodes := fs.String("nodes", "", "the two node names, e.g. nva-a,nva-b")
	var paths pathsFlag
	fs.Var(&paths, "addresses", "`[NAME=]ADDR_A,ADDR_B`: each node's address on one heartbeat path, in --nodes order; repeat for more paths (the first also carries the peer channel, the link and metrics)")
	dir := fs.String("dir", "baton-pair", "output directory (created with mode 0700)")
	etc := fs.String("etc", "/etc/baton", "absolute directory the files will live in on the nodes (paths in baton.yaml point there)")
	force := fs.Bool("force", false, "overwrite existing files")
	region := fs.String("region", "", "aws: the region (routes, vip)")
	subscription := fs.String("subscription", "", "azure: the subscription ID (routes, vip)")
	resourceGroup := fs.String("resource-group", "", "azure routes: narrow the route-table discovery by tag to this resource group")
	tag := fs.String("route-tag", "", "routes: `KEY=VALUE` tag of the route tables to steer (default baton=A-B)")
	dests := fs.String("destinations", "0.0.0.0/0", "routes: comma-separated destination prefixes the active takes")
	enis := fs.String("enis", "", "aws routes, vip: each node's inside ENI (eni-…), in --nodes order")
	nics := fs.String("nics", "", "azure vip: each node's NIC resource ID, in --nodes order")
	nextHops := fs.String("next-hops", "", "azure routes: each node's next-hop IP (default the first --addresses)")
	vip := fs.String("vip", "", "vip: the virtual address (kvm: ADDR/LEN on --interface; aws, azure: a secondary private IP)")
	iface := fs.String("interface", "", "kvm vip: the interface carrying the virtual address")
	asn := fs.Int("asn", 65001, "bgp: the appliances' AS number")
	peerASN := fs.Int("peer-asn", 0, "bgp: the route server's AS number (default 65515 on azure; required otherwise)")
	bgpPeers := fs.String("bgp-peers", "", "bgp: comma-separated route-server addresses (IPv4)")
	prefixes := fs.String("prefixes", "0.0.0.0/0", "bgp: comma-separated prefixes the active announces")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "baton init: unexpected argument %q (every input is a flag)\n", fs.Arg(0))
		return exitUsage
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "baton init: "+format+"\n", a...)
		return exitUsage
	}
	s := initSpec{cloud: *cloud, steer: *steer, paths: paths, etc: filepath.Clean(*etc), region: *region,
		subscription: *subscription, resourceGroup: *resourceGroup, iface: *iface, asn: *asn, peerASN: *peerASN}
	switch s.cloud {
	case "azure", "aws", "kvm":
	case "":
		return bad("--cloud: required (azure, aws or kvm)")
	default:
		return bad("--cloud: %q is not azure, aws or kvm", s.cloud)
	}
	switch s.steer {
	case "probe", "routes", "vip", "bgp":
	case "":
		return bad("--steer: required (probe, routes, vip or bgp)")
	default:
		return bad("--steer: %q is not probe, routes, vip or bgp", s.steer)
	}
	if s.cloud == "kvm" && s.steer == "routes" {
		return bad("--steer routes: needs a cloud route table API (--cloud aws or azure); on KVM steer with vip or bgp")
	}
	names := splitList(*nodes)
	if len(names) != 2 {
		return bad("--nodes: give the names of both nodes, e.g. --nodes nva-a,nva-b")
	}
	for _, n := range names {
		if err := pki.CheckName(n); err != nil {
			return bad("--nodes: %v", err)
		}
	}
	if names[0] == names[1] {
		return bad("--nodes: both nodes are named %q", names[0])
	}
	s.nodes = [2]string{names[0], names[1]}
	if len(s.paths) == 0 {
		return bad("--addresses: required: each node's address on the heartbeat path, e.g. --addresses 10.0.0.4,10.0.0.5")
	}
	if !filepath.IsAbs(*etc) {
		return bad("--etc: %q is not an absolute path", *etc)
	}
	if *dir == "" {
		return bad("--dir: empty")
	}
	pair := func(v string) ([2]string, bool) {
		l := splitList(v)
		if len(l) != 2 {
			return [2]string{}, false
		}
		return [2]string{l[0], l[1]}, true
	}
	needs := func(flag, what string) int {
		return bad("%s: required with --cloud %s --steer %s (%s)", flag, s.cloud, s.steer, what)
	}
	if s.steer == "routes" {
		k, v := "baton", s.nodes[0]+"-"+s.nodes[1]
		if *tag != "" {
			if !reInitTag.MatchString(*tag) {
				return bad("--route-tag: %q is not KEY=VALUE", *tag)
			}
			k, v, _ = strings.Cut(*tag, "=")
		}
		s.tag = [2]string{k, v}
		s.destinations = splitList(*dests)
		if len(s.destinations) == 0 {
			return bad("--destinations: give at least one prefix, e.g. 0.0.0.0/0")
		}
		for _, d := range s.destinations {
			if p, err := netip.ParsePrefix(d); err != nil || p.Masked() != p {
				return bad("--destinations: %q is not a CIDR prefix without host bits", d)
			}
		}
	}
	if s.cloud == "aws" && (s.steer == "routes" || s.steer == "vip") {
		if s.region == "" {
			return needs("--region", "e.g. eu-west-1")
		}
		var ok bool
		if s.enis, ok = pair(*enis); !ok {
			return needs("--enis", "each node's inside ENI, eni-…,eni-…")
		}
		for _, id := range s.enis {
			if !reInitENI.MatchString(id) {
				return bad("--enis: %q is not an ENI ID (eni-…)", id)
			}
		}
		if s.enis[0] == s.enis[1] {
			return bad("--enis: both nodes have %s", s.enis[0])
		}
	}
	if s.cloud == "azure" && (s.steer == "routes" || s.steer == "vip") {
		if s.subscription == "" {
			return needs("--subscription", "the subscription ID")
		}
		if !reInitUUID.MatchString(s.subscription) {
			return bad("--subscription: %q is not a subscription GUID", s.subscription)
		}
	}
	if s.resourceGroup != "" && !(s.cloud == "azure" && s.steer == "routes") {
		return bad("--resource-group: only for --cloud azure --steer routes")
	}
	if s.cloud == "azure" && s.steer == "routes" {
		s.nextHops = [2]netip.Addr{s.paths[0].addr[0], s.paths[0].addr[1]}
		if *nextHops != "" {
			l, ok := pair(*nextHops)
			if !ok {
				return bad("--next-hops: give one IP per node, in --nodes order")
			}
			for i, h := range l {
				a, err := netip.ParseAddr(h)
				if err != nil {
					return bad("--next-hops: %q is not an IP address", h)
				}
				s.nextHops[i] = a
			}
			if s.nextHops[0] == s.nextHops[1] {
				return bad("--next-hops: both nodes have %s", s.nextHops[0])
			}
		}
	}
	if s.steer == "vip" {
		if *vip == "" {
			return needs("--vip", "the virtual address")
		}
		p, err := parseVIP(*vip)
		if err != nil {
			return bad("--vip: %v", err)
		}
		s.vip = p
		switch s.cloud {
		case "kvm":
			if s.iface == "" {
				return needs("--interface", "the interface carrying the virtual address, e.g. eth1")
			}
			if !reInitIf.MatchString(s.iface) {
				return bad("--interface: %q is not an interface name", s.iface)
			}
		default:
			if !p.IsSingleIP() {
				return bad("--vip: a secondary private IP in %s is one address, not %s", s.cloud, p)
			}
		}
		if s.cloud == "azure" {
			var ok bool
			if s.nics, ok = pair(*nics); !ok {
				return needs("--nics", "each node's NIC resource ID")
			}
			for _, id := range s.nics {
				r, err := azure.ParseID(id, "Microsoft.Network/networkInterfaces")
				if err != nil {
					return bad("--nics: %v", err)
				}
				if !strings.EqualFold(r.Subscription, s.subscription) {
					return bad("--nics: %s is in subscription %s, not --subscription %s", id, r.Subscription, s.subscription)
				}
			}
			if strings.EqualFold(s.nics[0], s.nics[1]) {
				return bad("--nics: both nodes have %s", s.nics[0])
			}
		}
	}
	if s.steer == "bgp" {
		for _, a := range splitList(*bgpPeers) {
			ip, err := netip.ParseAddr(a)
			if err != nil || !ip.Is4() {
				return bad("--bgp-peers: %q is not an IPv4 address", a)
			}
			s.bgpPeers = append(s.bgpPeers, ip)
		}
		if len(s.bgpPeers) == 0 {
			return needs("--bgp-peers", "the route server's addresses, e.g. 10.1.1.4,10.1.1.5")
		}
		if s.peerASN == 0 && s.cloud == "azure" {
			s.peerASN = 65515 // Azure Route Server's fixed ASN
		}
		if s.peerASN == 0 {
			return needs("--peer-asn", "the route server's AS number")
		}
		for _, f := range []struct {
			flag string
			v    int
		}{{"--asn", s.asn}, {"--peer-asn", s.peerASN}} {
			if f.v < 1 || f.v > 4294967294 {
				return bad("%s: %d is outside 1..4294967294", f.flag, f.v)
			}
		}
		s.prefixes = splitList(*prefixes)
		if len(s.prefixes) == 0 {
			return bad("--prefixes: give at least one prefix to announce")
		}
		for _, p := range s.prefixes {
			if q, err := netip.ParsePrefix(p); err != nil || !q.Addr().Is4() || q.Masked() != q {
				return bad("--prefixes: %q is not an IPv4 CIDR prefix without host bits", p)
			}
		}
	}
	for _, u := range []struct {
		flag string
		set  bool
	}{
		{"--region", *region != "" && !(s.cloud == "aws" && (s.steer == "routes" || s.steer == "vip"))},
		{"--subscription", *subscription != "" && !(s.cloud == "azure" && (s.steer == "routes" || s.steer == "vip"))},
		{"--enis", *enis != "" && !(s.cloud == "aws" && (s.steer == "routes" || s.steer == "vip"))},
		{"--nics", *nics != "" && !(s.cloud == "azure" && s.steer == "vip")},
		{"--next-hops", *nextHops != "" && !(s.cloud == "azure" && s.steer == "routes")},
		{"--route-tag", *tag != "" && s.steer != "routes"},
		{"--vip", *vip != "" && s.steer != "vip"},
		{"--interface", *iface != "" && !(s.cloud == "kvm" && s.steer == "vip")},
		{"--bgp-peers", *bgpPeers != "" && s.steer != "bgp"},
		{"--peer-asn", *peerASN != 0 && s.steer != "bgp"},
	} {
		if u.set {
			return bad("%s: not used with --cloud %s --steer %s", u.flag, s.cloud, s.steer)
		}
	}

	// Render and check everything in memory; write nothing until all of
	// it is valid and no file would be overwritten by accident.
	files := map[string][]byte{}
	var order []string
	for i := range 2 {
		name := s.nodes[i] + ".yaml"
		doc := renderInit(s, i)
		cfg, err := config.Parse(doc, filepath.Join(*dir, name), nil)
		if err != nil {
			return bad("these flags give an invalid configuration for %s:\n%v", s.nodes[i], err)
		}
		files[name] = doc
		order = append(order, name)
		pol, err := initPolicy(s, cfg)
		if err != nil {
			return bad("generating the permission policy for %s: %v", s.nodes[i], err)
		}
		if pol != nil {
			pname := "policy-" + s.nodes[i] + ".json"
			files[pname] = append(pol, '\n')
			order = append(order, pname)
		}
	}
	pkiDir := filepath.Join(*dir, "pki")
	if !*force {
		var exist []string
		for _, f := range order {
			exist = append(exist, filepath.Join(*dir, f))
		}
		for _, f := range pki.Files(s.nodes[:]) {
			exist = append(exist, filepath.Join(pkiDir, f))
		}
		for _, p := range exist {
			if _, err := os.Stat(p); err == nil {
				fmt.Fprintf(e.stderr, "baton init: %s exists: refusing to overwrite (use --force); nothing written\n", p)
				return exitFailure
			} else if !errors.Is(err, iofs.ErrNotExist) {
				fmt.Fprintf(e.stderr, "baton init: checking %s: %v\n", p, err)
				return exitFailure
			}
		}
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintf(e.stderr, "baton init: creating %s: %v\n", *dir, err)
		return exitFailure
	}
	if err := pki.Generate(pkiDir, s.nodes[:], 3650*24*time.Hour, *force); err != nil {
		fmt.Fprintf(e.stderr, "baton init: %v\n", err)
		return exitFailure
	}
	for _, f := range order {
		mode := os.FileMode(0o600)
		if strings.HasSuffix(f, ".json") {
			mode = 0o644
		}
		if err := store.WriteFileAtomic(filepath.Join(*dir, f), files[f], mode); err != nil {
			fmt.Fprintf(e.stderr, "baton init: writing %s: %v\n", filepath.Join(*dir, f), err)
			return exitFailure
		}
	}
	for _, f := range pki.Files(s.nodes[:]) {
		fmt.Fprintln(e.stdout, filepath.Join(pkiDir, f))
	}
	for _, f := range order {
		fmt.Fprintln(e.stdout, filepath.Join(*dir, f))
	}
	fmt.Fprintln(e.stdout)
	for i, n := range s.nodes {
		fmt.Fprintf(e.stdout, "on %s: copy %s/{ca.crt,heartbeat.key,%s.crt,%s.key} to %s/pki/ (keys 0600, directory 0700) and %s to %s/baton.yaml,\n",
			n, pkiDir, n, n, s.etc, filepath.Join(*dir, n+".yaml"), s.etc)
		fmt.Fprintf(e.stdout, "  then: baton validate && systemctl enable --now baton\n")
		if pol := "policy-" + n + ".json"; files[pol] != nil {
			fmt.Fprintf(e.stdout, "  permissions: %s\n", initPolicyHint(s, filepath.Join(*dir, pol), i))
		}
	}
	fmt.Fprintf(e.stdout, "keep %s offline: it signs node certificates.\n", filepath.Join(pkiDir, "ca.key"))
	return exitOK
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseVIP accepts ADDR/LEN or a bare address (a host prefix).
func parseVIP(v string) (netip.Prefix, error) {
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or ADDR/LEN", v)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or ADDR/LEN", v)
	}
	return p, nil
}

// initPolicy is `baton policy` for one node's configuration, or nil when
// the steering needs no cloud permissions.
func initPolicy(s initSpec, cfg *config.Config) ([]byte, error) {
	if s.steer != "routes" && s.steer != "vip" {
		return nil, nil
	}
	switch s.cloud {
	case "aws":
		return policy.AWS(cfg.Routes, cfg.Addresses, policy.AWSOptions{Partition: "aws", Region: s.region, Fencing: cfg.Witness != nil, DNS: cfg.DNS})
	case "azure":
		return policy.Azure(cfg.Routes, cfg.Addresses, policy.AzureOptions{Name: "baton " + s.nodes[0] + "-" + s.nodes[1], Fencing: cfg.Witness != nil, DNS: cfg.DNS})
	}
	return nil, nil
}

func initPolicyHint(s initSpec, path string, i int) string {
	if s.cloud == "aws" {
		return fmt.Sprintf("attach %s to %s's instance role (aws iam put-role-policy --policy-document file://%s)", path, s.nodes[i], path)
	}
	return fmt.Sprintf("az role definition create --role-definition @%s, then assign it to %s's managed identity", path, s.nodes[i])
}

// renderInit writes node i's baton.yaml, commented.
func renderInit(s initSpec, i int) []byte {
	j := 1 - i
	me, peer := s.nodes[i], s.nodes[j]
	first := s.paths[0]
	hp := func(a netip.Addr, port int) string { return net.JoinHostPort(a.String(), fmt.Sprint(port)) }
	etc := func(f string) string { return filepath.Join(s.etc, f) }
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# baton on %s, one of the pair %s / %s (%s, steering: %s).\n", me, s.nodes[0], s.nodes[1], s.cloud, s.steer)
	w("# Written by baton init; every key is in the README's configuration\n")
	w("# reference. Install as %s on %s.\n\n", etc("baton.yaml"), me)
	w("node:\n  name: %s\n", me)
	w("  # No preferred node: whoever is active stays active when the other\n")
	w("  # comes back. The priority only breaks the tie at a joint start.\n")
	w("  priority: %d\n  preempt: false\n  state_dir: /var/lib/baton\n\n", 110-10*i)
	w("log:\n  level: info\n  format: json\n\n")
	w("heartbeat:\n  # A path is down after interval x misses of silence.\n")
	w("  interval: 200ms\n  misses: 3\n  listen: \":5405\"\n")
	w("  key_file: %s   # the same 32 random bytes on both nodes\n\n", etc("pki/heartbeat.key"))
	w("peer:\n  name: %s\n  paths:\n", peer)
	for _, p := range s.paths {
		w("    - name: %s\n      address: %q\n      source: %s\n", p.name, hp(p.addr[j], 5405), p.addr[i])
	}
	w("  # The TCP channel carries heartbeats too; its closing tells at once\n")
	w("  # that the peer's baton is gone.\n")
	w("  channel:\n    listen: %q\n    address: %q\n\n", hp(first.addr[i], 5406), hp(first.addr[j], 5406))
	w("# The mutual-TLS link for session and configuration sync (off until a\n")
	w("# sessions: or sync: section turns them on).\n")
	w("link:\n  listen: %q\n  address: %q\n", hp(first.addr[i], 5407), hp(first.addr[j], 5407))
	w("  ca_file: %s\n  cert_file: %s\n  key_file: %s\n\n", etc("pki/ca.crt"), etc("pki/"+me+".crt"), etc("pki/"+me+".key"))
	w("# Add local health checks here: a failing check moves the node to FAULT\n")
	w("# and hands the role to the peer, e.g.\n")
	w("#   - {name: inside-link, type: interface, interface: eth1, rise: 2, fall: 2}\n")
	w("checks: []\n\n")
	if s.steer == "probe" {
		w("# The load balancers' health probe: 200 on the ACTIVE node, 503 on\n")
		w("# every other state. Point every load balancer's probe at HTTP 8444.\n")
		w("probe:\n  mode: http\n  listen: \":8444\"\n  unconnected_after: 30s\n\n")
	} else {
		w("# 200 on the ACTIVE node only: for monitoring.\n")
		w("probe:\n  mode: http\n  listen: %q\n\n", hp(first.addr[i], 8444))
	}
	switch {
	case s.steer == "routes" && s.cloud == "aws":
		w("# The route tables tagged %s=%s: on takeover the new active node\n", s.tag[0], s.tag[1])
		w("# points the destinations (and every route via the peer) at its ENI.\n")
		w("routes:\n  cloud: aws\n  reconcile: 30s\n  aws:\n    region: %s\n", s.region)
		w("    tags: {%q: %q}\n", s.tag[0], s.tag[1])
		w("    local_eni: %s\n    peer_eni: %s\n    peer_targets: true\n", s.enis[i], s.enis[j])
		w("    destinations: [%s]\n\n", strings.Join(s.destinations, ", "))
	case s.steer == "routes" && s.cloud == "azure":
		w("# The route tables tagged %s=%s: on takeover the new active node\n", s.tag[0], s.tag[1])
		w("# points the destinations (and every route via the peer) at its IP.\n")
		w("routes:\n  cloud: azure\n  reconcile: 30s\n  azure:\n    subscription_id: %s\n", s.subscription)
		w("    tags: {%q: %q}\n", s.tag[0], s.tag[1])
		if s.resourceGroup != "" {
			w("    resource_group: %s\n", s.resourceGroup)
		}
		w("    local_ip: %s\n    peer_ip: %s\n    peer_targets: true\n", s.nextHops[i], s.nextHops[j])
		w("    destinations: [%s]\n\n", strings.Join(s.destinations, ", "))
	case s.steer == "vip" && s.cloud == "kvm":
		w("# The virtual address: the active node adds it and sends gratuitous\n")
		w("# ARP (unsolicited NA for IPv6); the others remove it.\n")
		w("vip:\n  addresses:\n    - {address: %s, interface: %s}\n  garp_count: 5\n  garp_interval: 200ms\n\n", s.vip, s.iface)
	case s.steer == "vip" && s.cloud == "aws":
		w("# The secondary private IP: reassigned to this node's ENI on takeover.\n")
		w("addresses:\n  cloud: aws\n  aws:\n    region: %s\n    local_eni: %s\n    private_ips: [%s]\n\n", s.region, s.enis[i], s.vip.Addr())
	case s.steer == "vip" && s.cloud == "azure":
		w("# The secondary private IP: moved to this node's NIC on takeover.\n")
		w("addresses:\n  cloud: azure\n  azure:\n    subscription_id: %s\n", s.subscription)
		w("    local_nic: %s\n    peer_nic: %s\n    private_ips: [%s]\n\n", s.nics[i], s.nics[j], s.vip.Addr())
	case s.steer == "bgp":
		w("# The active node announces the prefixes with next-hop self; the\n")
		w("# standby announces them with its AS path prepended, so the route\n")
		w("# server prefers the active and falls back at once.\n")
		w("bgp:\n  mode: active-standby\n  standby: prepend\n  asn: %d\n", s.asn)
		w("  prefixes: [%s]\n  peers:\n", strings.Join(s.prefixes, ", "))
		for _, p := range s.bgpPeers {
			w("    - {address: %s, asn: %d}\n", p, s.peerASN)
		}
		w("  timers: {hold: 9s, keepalive: 3s}\n\n")
	}
	w("api:\n  socket: /run/baton/baton.sock\n\n")
	w("metrics:\n  listen: %q\n", hp(first.addr[i], 9108))
	return []byte(b.String())
}
