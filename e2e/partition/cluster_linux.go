package partition

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/lab"
)

// Witness types the cluster can run.
const (
	WitnessNone      = "none"
	WitnessEtcd      = "etcd"
	WitnessAzureBlob = "azureblob"
	WitnessDynamoDB  = "dynamodb"
)

// WitnessAddr is the witness host's address on the front segment.
const WitnessAddr = "10.100.1.30"

// Ports the witness servers listen on.
const (
	EtcdPort    = 2379
	MotoPort    = 5000
	AzuritePort = 10000
)

// ClusterOptions describe a Cluster.
type ClusterOptions struct {
	Bin      string        // the baton binary
	Dir      string        // working directory: configs, logs, witness data
	Witness  string        // none, etcd, azureblob or dynamodb
	Interval time.Duration // heartbeat interval (default 100ms)
	Misses   int           // heartbeats missed before a path is down (default 3)
	// TTL is the lease time; default 2s (etcd, dynamodb) or 15s (azureblob).
	TTL time.Duration
	// DriftMargin and StepDown for the witness section (default 250ms each,
	// 500ms each for azureblob).
	DriftMargin, StepDown time.Duration
	// AzuriteDir holds node_modules/azurite; default: the repository's
	// internal/witness/testdata/azurite.
	AzuriteDir string
	// Log receives the cluster's progress; nil discards it.
	Log *slog.Logger
}

func (o *ClusterOptions) setDefaults() {
	if o.Witness == "" {
		o.Witness = WitnessNone
	}
	if o.Interval == 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Misses == 0 {
		o.Misses = 3
	}
	if o.TTL == 0 {
		o.TTL = 2 * time.Second
		if o.Witness == WitnessAzureBlob {
			o.TTL = 15 * time.Second
		}
	}
	if o.DriftMargin == 0 {
		o.DriftMargin = 250 * time.Millisecond
		if o.Witness == WitnessAzureBlob {
			o.DriftMargin = 500 * time.Millisecond
		}
	}
	if o.StepDown == 0 {
		o.StepDown = o.DriftMargin
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Cuts is the set of network faults in place.
type Cuts struct {
	Nodes   bool    // nva-a ↔ nva-b
	Witness [2]bool // nva-x ↔ witness
}

// Cluster is the pair, its witness and the two baton nodes.
type Cluster struct {
	Pair    *lab.Pair
	Witness *lab.Host // nil without a witness
	Nodes   [2]*lab.BatonNode
	Opts    ClusterOptions

	env   []string
	probe *http.Client

	// The witness server, for KillWitness and StartWitness (etcd only).
	witnessArgv               []string
	witnessLog, witnessHealth string
	witnessProc               *lab.Proc

	mu     sync.Mutex
	cuts   Cuts
	frozen [2]bool
	api    [2]*api.Client
}

// NewCluster builds the lab, starts the witness server and writes both
// nodes' configurations. It does not start the nodes. Close it always.
func NewCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	o.setDefaults()
	switch o.Witness {
	case WitnessNone, WitnessEtcd, WitnessAzureBlob, WitnessDynamoDB:
	default:
		return nil, fmt.Errorf("building partition cluster: unknown witness %q", o.Witness)
	}
	p, err := lab.NewPair(lab.RandomPrefix(), o.Log)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Pair: p, Opts: o}
	c.probe = &http.Client{Timeout: 100 * time.Millisecond, Transport: &http.Transport{
		DialContext: p.Client.DialContext, MaxIdleConnsPerHost: 32, IdleConnTimeout: 5 * time.Second,
	}}
	if err := c.build(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

func (c *Cluster) build(ctx context.Context) error {
	o := c.Opts
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", o.Dir, err)
	}
	// The witness sits on the front segment; the cuts are nftables drops.
	for _, h := range []*lab.Host{c.Pair.A, c.Pair.B} {
		if err := c.applyRules(ctx, h, nil); err != nil {
			return err
		}
	}
	extra := ""
	if o.Witness != WitnessNone {
		w, err := c.Pair.AddHost("witness")
		if err != nil {
			return err
		}
		c.Witness = w
		if err := c.Pair.Attach(w, lab.IfFront, "front", WitnessAddr+"/24"); err != nil {
			return err
		}
		if err := c.applyRules(ctx, w, nil); err != nil {
			return err
		}
		extra, err = c.startWitness(ctx)
		if err != nil {
			return err
		}
	}
	var opts [2]lab.NodeOptions
	for i := range opts {
		opts[i] = lab.NodeOptions{Priority: 200 - 100*i, Interval: o.Interval, Misses: o.Misses}
	}
	nodesDir := filepath.Join(o.Dir, "nodes")
	if err := os.MkdirAll(nodesDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", nodesDir, err)
	}
	nodes, err := lab.SetupBatonNodes(c.Pair, nodesDir, opts)
	if err != nil {
		return err
	}
	c.Nodes = nodes
	for _, n := range nodes {
		f, err := os.OpenFile(n.Config, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("appending the witness section to %s: %w", n.Config, err)
		}
		_, err = io.WriteString(f, extra)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("appending the witness section to %s: %w", n.Config, err)
		}
	}
	return nil
}

// witnessYAML is the witness section both nodes get.
func (c *Cluster) witnessYAML(body string) string {
	o := c.Opts
	// The lab's witness servers speak plain HTTP: insecure says so.
	return fmt.Sprintf("witness:\n  type: %s\n  ttl: %s\n  drift_margin: %s\n  step_down: %s\n  insecure: true\n%s",
		o.Witness, o.TTL, o.DriftMargin, o.StepDown, body)
}

// Close stops every process and removes the lab.
func (c *Cluster) Close() error {
	return c.Pair.Close()
}

// Start starts node i's daemon.
func (c *Cluster) Start(i int) error {
	n := c.Nodes[i]
	p, err := n.Host.Start("baton-"+lab.ApplianceName(i), []string{c.Opts.Bin, "run", "--config", n.Config}, c.env, n.LogPath)
	if err != nil {
		return err
	}
	n.Proc = p
	c.mu.Lock()
	c.frozen[i] = false
	c.mu.Unlock()
	return nil
}

// Running reports whether node i's process runs (frozen counts).
func (c *Cluster) Running(i int) bool { return c.Nodes[i].Running() }

// Kill SIGKILLs node i and waits until it has exited.
func (c *Cluster) Kill(i int) error {
	n := c.Nodes[i]
	if !n.Running() {
		return nil
	}
	if err := n.Proc.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-n.Proc.Done():
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("killing %s (pid %d): still running", lab.ApplianceName(i), n.Proc.PID)
	}
}

// Freeze stops (SIGSTOP) or resumes (SIGCONT) node i.
func (c *Cluster) Freeze(i int, stop bool) error {
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	if err := c.Nodes[i].Proc.Signal(sig); err != nil {
		return err
	}
	c.mu.Lock()
	c.frozen[i] = stop
	c.mu.Unlock()
	return nil
}

// Frozen reports whether node i is stopped.
func (c *Cluster) Frozen(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frozen[i]
}

// Status asks node i's API for its status. One client per node keeps its
// connections: the API caps concurrent connections, and a client per call
// would leave an idle one behind each time.
func (c *Cluster) Status(ctx context.Context, i int) (api.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	return c.API(i).Status(ctx)
}

// API returns the client of node i's API.
func (c *Cluster) API(i int) *api.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.api[i] == nil {
		c.api[i] = api.NewClient(filepath.Join(c.Nodes[i].Dir, "baton.sock"), "")
	}
	return c.api[i]
}

// Role is node i's role from its API: DEAD when not running, ? when the
// API does not answer.
func (c *Cluster) Role(ctx context.Context, i int) string {
	if !c.Running(i) {
		return "DEAD"
	}
	if c.Frozen(i) {
		return "FROZEN"
	}
	st, err := c.Status(ctx, i)
	if err != nil {
		return "?"
	}
	return st.Role
}

// Probe returns the HTTP code of node i's probe as the client sees it (0:
// no answer).
func (c *Cluster) Probe(ctx context.Context, i int) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/", lab.FrontAddr(i), lab.ProbePort), nil)
	if err != nil {
		return 0
	}
	resp, err := c.probe.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// RoleChanges reads node i's role changes from its log.
func (c *Cluster) RoleChanges(i int) ([]lab.RoleChange, error) {
	f, err := os.Open(c.Nodes[i].LogPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s's log: %w", lab.ApplianceName(i), err)
	}
	defer f.Close()
	return lab.ReadRoleChanges(f)
}

// LogTail returns the last n lines of node i's log.
func (c *Cluster) LogTail(i, n int) string {
	b, _ := os.ReadFile(c.Nodes[i].LogPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Cuts returns the network faults in place.
func (c *Cluster) Cuts() Cuts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cuts
}

// SetCuts puts exactly the network faults in cs in place: every host
// drops what arrives from the hosts it is cut from (input only, as lost
// packets in the network would; the client still reaches both probes).
func (c *Cluster) SetCuts(ctx context.Context, cs Cuts) error {
	addrs := [2][]string{{lab.AFront, lab.AHB}, {lab.BFront, lab.BHB}}
	var drop [3][]string // nva-a, nva-b, witness
	if cs.Nodes {
		drop[0] = append(drop[0], addrs[1]...)
		drop[1] = append(drop[1], addrs[0]...)
	}
	for i := range 2 {
		if cs.Witness[i] {
			drop[i] = append(drop[i], WitnessAddr)
			drop[2] = append(drop[2], lab.FrontAddr(i))
		}
	}
	hosts := []*lab.Host{c.Pair.A, c.Pair.B, c.Witness}
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, h := range hosts {
		if h == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.applyRules(ctx, h, drop[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.mu.Lock()
	c.cuts = cs
	c.mu.Unlock()
	return nil
}

// applyRules replaces the host's partition table with one dropping every
// packet that arrives from the addresses in from.
func (c *Cluster) applyRules(ctx context.Context, h *lab.Host, from []string) error {
	var b strings.Builder
	b.WriteString("table inet bpart\ndelete table inet bpart\ntable inet bpart {\n  chain in {\n    type filter hook input priority -10; policy accept;\n")
	if len(from) > 0 {
		fmt.Fprintf(&b, "    ip saddr { %s } drop\n", strings.Join(from, ", "))
	}
	b.WriteString("  }\n}\n")
	path := filepath.Join(c.Opts.Dir, "nft-"+h.Name()+".conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing nftables rules for %s: %w", h.Name(), err)
	}
	if _, err := h.Run(ctx, "nft", "-f", path); err != nil {
		return fmt.Errorf("applying partition rules in %s: %w", h.Name(), err)
	}
	return nil
}

// waitHTTP polls url from the client host until it answers at all.
func (c *Cluster) waitHTTP(ctx context.Context, what, url string, limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: c.Pair.Client.DialContext, DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("waiting for %s at %s: %w", what, url, last)
}

// clientDial dials from the client host (for SDK clients that set up the
// witness).
func (c *Cluster) clientDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.Pair.Client.DialContext(ctx, network, addr)
}
