package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/batonha/baton/internal/lab"
)

// agent is Pacemaker's resource agent from Debian's resource-agents.
const agent = "/usr/lib/ocf/resource.d/heartbeat/aws-vpc-move-ip"

// imdsAddr is where the agent reads instance metadata (hard-coded in it).
const imdsAddr = "169.254.169.254"

// peerLab is a namespace where aws-vpc-move-ip runs as on an instance:
// an eth0 whose MAC the metadata service maps to this node's ENI, the
// metadata service on 169.254.169.254, and the emulated EC2 endpoint on
// the namespace's loopback. awscli reaches the endpoint through a wrapper
// that adds --endpoint-url (Debian's awscli 2.9 has no endpoint setting).
type peerLab struct {
	lab  *lab.Lab
	host *lab.Host
	dir  string
	imds *http.Server
}

func newPeerLab() (*peerLab, error) {
	for _, p := range []string{agent, "/usr/bin/aws"} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing (scripts/deps.sh bench-routes installs resource-agents and awscli): %w", p, err)
		}
	}
	l, err := lab.New(lab.RandomPrefix(), nil)
	if err != nil {
		return nil, err
	}
	pl := &peerLab{lab: l}
	if err := pl.setup(); err != nil {
		pl.close()
		return nil, err
	}
	return pl, nil
}

func (pl *peerLab) setup() error {
	var err error
	if pl.host, err = pl.lab.AddHost("movip"); err != nil {
		return err
	}
	ns := pl.host.NS()
	const mac = "02:00:00:00:00:0a"
	for _, args := range [][]string{
		{"link", "add", "eth0", "address", mac, "type", "veth", "peer", "name", "eth0peer"},
		{"link", "set", "eth0peer", "up"},
		{"link", "set", "eth0", "up"},
		{"addr", "add", imdsAddr + "/32", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
		}
	}
	if pl.dir, err = os.MkdirTemp("", "bench-routes-peer-"); err != nil {
		return err
	}
	files := map[string]string{
		"config":      "[default]\nregion = us-east-1\noutput = text\n",
		"credentials": "[default]\naws_access_key_id = bench\naws_secret_access_key = bench\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(pl.dir, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	ln, err := pl.host.Listen("tcp", imdsAddr+":80")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "bench-token") })
	mux.HandleFunc("GET /latest/meta-data/instance-id", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "i-0000000000000000a") })
	mux.HandleFunc("GET /latest/meta-data/network/interfaces/macs/"+mac+"/interface-id", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, localENI) })
	pl.imds = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = pl.imds.Serve(ln) }()
	return nil
}

// listen opens a listener for the emulated EC2 API inside the namespace.
func (pl *peerLab) listen() (net.Listener, error) { return pl.host.Listen("tcp", "127.0.0.1:0") }

// moveIPs starts one agent per destination (a /32 overlay address) across
// every table, parallel at once as Pacemaker starts independent resources
// (its node-action-limit defaults to 2 × CPUs), and returns the time until the last
// start returned: each start checks the tables, replaces the route in each
// and checks them again (the agent's own read-back, a 1 s pause after each
// table call).
func (pl *peerLab) moveIPs(ctx context.Context, endpoint string, tables, dests []string, parallel int) (time.Duration, error) {
	wrapper := filepath.Join(pl.dir, "aws")
	script := "#!/bin/sh\nexec /usr/bin/aws --endpoint-url " + endpoint + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(dests))
	slots := make(chan struct{}, max(1, parallel))
	t0 := time.Now()
	for i, d := range dests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			ip := strings.TrimSuffix(d, "/32")
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", pl.host.NS(), agent, "start")
			cmd.Env = append(os.Environ(),
				"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=vip"+fmt.Sprint(i),
				"OCF_RESKEY_ip="+ip, "OCF_RESKEY_routing_table="+strings.Join(tables, ","),
				"OCF_RESKEY_interface=eth0", "OCF_RESKEY_lookup_type=NetworkInterfaceId",
				"OCF_RESKEY_awscli="+wrapper, "OCF_RESKEY_region=us-east-1", "OCF_RESKEY_profile=default",
				"AWS_CONFIG_FILE="+filepath.Join(pl.dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(pl.dir, "credentials"),
				"HOME="+pl.dir, "AWS_PAGER=",
			)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("start of %s: %w: %s", ip, err, lastLines(string(out), 5))
			}
		}()
	}
	wg.Wait()
	return time.Since(t0), errors.Join(errs...)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (pl *peerLab) close() {
	if pl.imds != nil {
		_ = pl.imds.Close()
	}
	if pl.dir != "" {
		_ = os.RemoveAll(pl.dir)
	}
	if err := pl.lab.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "bench routes: closing the lab:", err)
	}
}
