package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

const bgpNode = `heartbeat: {key_file: /etc/baton/heartbeat.key}
probe: {mode: "off"}
bgp:
  mode: %s
  asn: 65001
  router_id: 10.0.0.1
  prefixes: [10.1.0.0/16]
  peers: [{address: 10.1.1.4, asn: 65515}]
`

func TestPeerOptionalOnlyForActiveActiveBGP(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name")
	}
	c, err := Parse([]byte(fmt.Sprintf(bgpNode, "active-active")), "vmss.yaml", nil)
	if err != nil {
		t.Fatalf("active-active node with no peer: %v", err)
	}
	if c.Node.Name != host || c.Peer.Name != "" {
		t.Errorf("node %q peer %q, want the host name %q and no peer", c.Node.Name, c.Peer.Name, host)
	}
	c, err = Parse([]byte(fmt.Sprintf(bgpNode, "active-active")), "vmss.yaml", []string{"BATON_NODE_NAME=nva-7"})
	if err != nil || c.Node.Name != "nva-7" {
		t.Errorf("BATON_NODE_NAME does not override the host name: %v, %+v", err, c)
	}

	_, err = Parse([]byte(fmt.Sprintf(bgpNode, "active-standby")), "pair.yaml", nil)
	errs := asErrors(t, err)
	if len(errs) != 2 || errs[0].Path != "peer.name" || !strings.Contains(errs[0].Msg, "bgp.mode: active-active") || errs[1].Path != "peer.paths" {
		t.Errorf("active-standby with no peer: %v", errs)
	}
	_, err = Parse([]byte(fmt.Sprintf(bgpNode, "active-active")+"sessions: {enabled: true}\n"), "s.yaml", nil)
	if errs := asErrors(t, err); len(errs) == 0 || errs[0].Path != "peer.name" || !strings.Contains(errs[0].Msg, "sessions and sync") {
		t.Errorf("sessions with no peer: %v", errs)
	}
	// A peer section that is there but incomplete is still an error.
	_, err = Parse([]byte(fmt.Sprintf(bgpNode, "active-active")+"peer: {name: nva-b}\n"), "p.yaml", nil)
	if errs := asErrors(t, err); len(errs) != 1 || errs[0].Path != "peer.paths" {
		t.Errorf("peer without paths: %v", errs)
	}
}

func TestVariableExpansionRejected(t *testing.T) {
	doc := "node: {name: \"${HOSTNAME}\"}\nheartbeat: {key_file: /etc/baton/hb.key}\npeer:\n  name: b\n  paths: [{name: ha, address: \"${PEER}:5405\"}]\n"
	_, err := Parse([]byte(doc), "x.yaml", []string{"HOSTNAME=a", "PEER=10.0.0.2"})
	errs := asErrors(t, err)
	want := map[string]string{"node.name": "BATON_NODE_NAME", "peer.paths[0].address": "BATON_PEER_PATHS"}
	for _, e := range errs {
		hint, ok := want[e.Path]
		if !ok {
			t.Errorf("unexpected error %v", e)
			continue
		}
		if !strings.Contains(e.Msg, "does not expand ${VAR}") || !strings.Contains(e.Msg, hint) || e.Line == 0 {
			t.Errorf("%s: %v, want a line and the hint %s", e.Path, e, hint)
		}
		delete(want, e.Path)
	}
	if len(want) > 0 {
		t.Errorf("no error for %v: %v", want, errs)
	}
}
