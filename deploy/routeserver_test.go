package deploy

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/batonha/baton/internal/action/bgp"
)

// TestAzureRouteServerModule checks what seed 003 needs of the rendered
// configurations beyond validity: the scale set's instances run with no
// peer, announcing in active-active mode and draining for scheduled
// events; the reconciler host's bgp.peerings names the route server and
// the scale set this module creates and serves the webhook Event Grid
// posts to.
func TestAzureRouteServerModule(t *testing.T) {
	m := parseModule(t, "terraform/azure-route-server")
	configs := m.render(t)
	nva, rec := configs["nva"], configs["peerings"]
	if nva == nil || rec == nil {
		t.Fatalf("want configurations for local.nodes nva and peerings, got %v", configs)
	}
	host, _ := os.Hostname()
	if nva.Peer.Name != "" || nva.Node.Name != host {
		t.Errorf("instance: peer %q, node %q; want no peer and the host name %q", nva.Peer.Name, nva.Node.Name, host)
	}
	if nva.BGP == nil || nva.BGP.Mode != bgp.ModeActiveActive || len(nva.BGP.Peers) != 2 || nva.BGP.Peerings != nil {
		t.Errorf("instance: bgp %+v; want active-active to both route-server instances, without peerings (one host reconciles)", nva.BGP)
	}
	if nva.Events == nil || nva.Events.Cloud != "azure" {
		t.Errorf("instance: events %+v; want Azure scheduled events", nva.Events)
	}
	if nva.Probe.Mode != "http" || nva.Probe.Listen != ":8444" {
		t.Errorf("instance: probe %+v; the health extension probes http :8444", nva.Probe)
	}
	if rec.BGP == nil || rec.BGP.Peerings == nil {
		t.Fatalf("reconciler host: no bgp.peerings section")
	}
	pc := rec.BGP.Peerings
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("nva")})}}
	name := func(typ, label string) string {
		for _, b := range m.blocks {
			if b.Type == "resource" && b.Labels[0] == typ && b.Labels[1] == label {
				v, diags := b.Body.Attributes["name"].Expr.Value(ctx)
				if diags.HasErrors() {
					t.Fatalf("%s.%s name: %s", typ, label, diags.Error())
				}
				return v.AsString()
			}
		}
		t.Fatalf("no resource %s.%s", typ, label)
		return ""
	}
	if got, want := pc.Azure.ScaleSet, name("azurerm_linux_virtual_machine_scale_set", "nva"); got != want {
		t.Errorf("bgp.peerings.azure.scale_set %q, the module's scale set is %q", got, want)
	}
	if got, want := pc.Azure.RouteServer, name("azurerm_route_server", "rs"); got != want {
		t.Errorf("bgp.peerings.azure.route_server %q, the module's route server is %q", got, want)
	}
	if _, port, _ := net.SplitHostPort(nva.Probe.Listen); strconv.Itoa(pc.Health.Port) != port {
		t.Errorf("bgp.peerings.health.port %d: want the instances' HA check port (probe.listen %s)", pc.Health.Port, nva.Probe.Listen)
	}
	if pc.Webhook.Listen != ":8450" || pc.Webhook.TLS.CertFile == "" {
		t.Errorf("webhook %+v: Event Grid posts to https on 8450", pc.Webhook)
	}
	// The Event Grid subscription posts to that port, with the token.
	var url string
	for _, b := range m.blocks {
		if b.Type == "resource" && b.Labels[0] == "azurerm_eventgrid_event_subscription" {
			for _, inner := range b.Body.Blocks {
				if inner.Type == "webhook_endpoint" {
					url = string(inner.Body.Attributes["url"].Expr.(*hclsyntax.TemplateExpr).Range().SliceBytes(mustRead(t, inner.Body.Attributes["url"].SrcRange.Filename)))
				}
			}
		}
	}
	if url == "" || !strings.Contains(url, ":8450/") || !strings.Contains(url, "token=${var.webhook_token}") {
		t.Errorf("Event Grid webhook URL %q: want port 8450 and the token", url)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
