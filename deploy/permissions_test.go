package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/peerings"
	"github.com/batonha/baton/internal/policy"
)

// beyondPolicy lists, per module, the actions its templates grant beyond
// what `baton policy` prints for the configurations they render, each
// with the reason. Anything else granted, or anything missing, fails.
var beyondPolicy = map[string]map[string]string{
	"azure-pair": {
		// Its README: probe steering needs none; the role is kept for a
		// routes section added later.
		"Microsoft.Network/routeTables/read":         "a routes section added later",
		"Microsoft.Network/routeTables/routes/read":  "a routes section added later",
		"Microsoft.Network/routeTables/routes/write": "a routes section added later",
		"Microsoft.Network/networkInterfaces/read":   "a routes section added later",
	},
}

// TestTemplatePermissionsAreBatonPolicy: the IAM policies and Azure roles
// the Terraform modules create grant exactly what `baton policy` prints
// for the baton configurations the same modules render (a template that
// forgot the fencing tag or a peerings action fails here, not at the
// first failover).
func TestTemplatePermissionsAreBatonPolicy(t *testing.T) {
	dirs, _ := filepath.Glob("terraform/*")
	for _, dir := range dirs {
		name := filepath.Base(dir)
		if name == "" || !isDir(dir) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			m := parseModule(t, dir)
			configs := m.render(t)
			have := m.grantedActions(t)
			want := map[string]bool{}
			for key, cfg := range configs {
				if cfg == nil {
					t.Fatalf("node %s did not render", key)
				}
				for _, a := range policyActions(t, cfg) {
					want[a] = true
				}
			}
			for a := range want {
				if !have[a] {
					t.Errorf("baton policy grants %s for this module's configuration; the module's IAM policy / role does not", a)
				}
			}
			for a := range have {
				if !want[a] && beyondPolicy[name][a] == "" {
					t.Errorf("the module grants %s, which baton policy does not print for its configuration (least privilege)", a)
				}
			}
		})
	}
}

// policyActions is `baton policy --cloud aws` and `--cloud azure` for cfg,
// as action names.
func policyActions(t *testing.T, cfg *config.Config) []string {
	t.Helper()
	var pc *peerings.Config
	if cfg.BGP != nil {
		pc = cfg.BGP.Peerings
	}
	var out []string
	if doc, err := policy.AWS(cfg.Routes, cfg.Addresses, policy.AWSOptions{Fencing: cfg.Witness != nil, DNS: cfg.DNS, Peerings: pc, Witness: cfg.Witness}); err == nil {
		var d policy.Document
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		for _, s := range d.Statement {
			out = append(out, s.Action...)
		}
	}
	if doc, err := policy.Azure(cfg.Routes, cfg.Addresses, policy.AzureOptions{Fencing: cfg.Witness != nil, DNS: cfg.DNS, Peerings: pc, Witness: cfg.Witness}); err == nil {
		var r policy.Role
		if err := json.Unmarshal(doc, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Actions...)
		out = append(out, r.DataActions...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// grantedActions collects the actions of every aws_iam_role_policy
// (the Action lists inside its jsonencode'd document) and every
// azurerm_role_definition (permissions.actions and data_actions).
func (m *module) grantedActions(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	add := func(e hcl.Expression) {
		v, diags := e.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: actions must be literal strings: %s", e.Range(), diags.Error())
		}
		if v.Type() == cty.String {
			out[v.AsString()] = true
			return
		}
		for _, x := range v.AsValueSlice() {
			out[x.AsString()] = true
		}
	}
	for _, b := range m.blocks {
		if b.Type != "resource" {
			continue
		}
		switch b.Labels[0] {
		case "aws_iam_role_policy":
			hclsyntax.VisitAll(b.Body.Attributes["policy"].Expr, func(n hclsyntax.Node) hcl.Diagnostics {
				if obj, ok := n.(*hclsyntax.ObjectConsExpr); ok {
					for _, it := range obj.Items {
						if hcl.ExprAsKeyword(it.KeyExpr) == "Action" {
							add(it.ValueExpr)
						}
					}
				}
				return nil
			})
		case "azurerm_role_definition":
			for _, p := range b.Body.Blocks {
				if p.Type != "permissions" {
					continue
				}
				for _, k := range []string{"actions", "data_actions"} {
					if a, ok := p.Body.Attributes[k]; ok {
						add(a.Expr)
					}
				}
			}
		}
	}
	return out
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
