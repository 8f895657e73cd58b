package deploy

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/batonha/baton/internal/config"
)

// required lists, for every resource type the modules use, the arguments
// and blocks its provider requires (from the azurerm and aws provider
// documentation). A module using a type missing here fails the test: add
// the type's required arguments.
var required = map[string][]string{
	"azurerm_user_assigned_identity":  {"name", "location", "resource_group_name"},
	"azurerm_role_definition":         {"name", "scope"},
	"azurerm_role_assignment":         {"scope", "principal_id"},
	"azurerm_lb":                      {"name", "location", "resource_group_name"},
	"azurerm_public_ip":               {"name", "location", "resource_group_name", "allocation_method"},
	"azurerm_lb_backend_address_pool": {"name", "loadbalancer_id"},
	"azurerm_lb_probe":                {"name", "loadbalancer_id", "port"},
	"azurerm_lb_rule":                 {"name", "loadbalancer_id", "protocol", "frontend_port", "backend_port", "frontend_ip_configuration_name"},
	"azurerm_network_interface":       {"name", "location", "resource_group_name", "ip_configuration"},
	"azurerm_network_interface_backend_address_pool_association": {"network_interface_id", "ip_configuration_name", "backend_address_pool_id"},
	"azurerm_network_interface_security_group_association":       {"network_interface_id", "network_security_group_id"},
	"azurerm_network_security_group":                             {"name", "location", "resource_group_name"},
	"azurerm_network_security_rule":                              {"name", "priority", "direction", "access", "protocol", "resource_group_name", "network_security_group_name"},
	"azurerm_linux_virtual_machine":                              {"name", "location", "resource_group_name", "size", "admin_username", "network_interface_ids", "os_disk"},
	"azurerm_linux_virtual_machine_scale_set":                    {"name", "location", "resource_group_name", "sku", "admin_username", "network_interface", "os_disk"},
	"azurerm_route_table":                                        {"name", "location", "resource_group_name"},
	"azurerm_route":                                              {"name", "resource_group_name", "route_table_name", "address_prefix", "next_hop_type"},
	"azurerm_route_server":                                       {"name", "location", "resource_group_name", "sku", "public_ip_address_id", "subnet_id", "branch_to_branch_traffic_enabled"},
	"azurerm_eventgrid_event_subscription":                       {"name", "scope"},
	"aws_instance":                                               {"ami", "instance_type"},
	"aws_network_interface":                                      {"subnet_id"},
	"aws_network_interface_attachment":                           {"instance_id", "network_interface_id", "device_index"},
	"aws_security_group":                                         {"name", "vpc_id"},
	"aws_vpc_security_group_ingress_rule":                        {"security_group_id", "ip_protocol"},
	"aws_vpc_security_group_egress_rule":                         {"security_group_id", "ip_protocol"},
	"aws_route":                                                  {"route_table_id"},
	"aws_iam_role":                                               {"assume_role_policy"},
	"aws_iam_role_policy":                                        {"role", "policy"},
	"aws_iam_instance_profile":                                   {"role"},
	"aws_dynamodb_table":                                         {"name", "hash_key", "attribute"},
}

// module is one Terraform module directory, parsed.
type module struct {
	dir       string
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources map[string]bool // "type.name", also "data.type.name"
	blocks    []*hclsyntax.Block
}

func parseModule(t *testing.T, dir string) *module {
	t.Helper()
	m := &module{dir: dir, variables: map[string]*hclsyntax.Block{}, locals: map[string]*hclsyntax.Attribute{}, resources: map[string]bool{}}
	files, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
	if len(files) == 0 {
		t.Fatalf("%s has no .tf files", dir)
	}
	p := hclparse.NewParser()
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("parsing %s: %s", f, diags.Error())
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			m.blocks = append(m.blocks, b)
			switch b.Type {
			case "variable":
				m.variables[b.Labels[0]] = b
			case "locals":
				for n, a := range b.Body.Attributes {
					m.locals[n] = a
				}
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = true
			case "data":
				m.resources["data."+b.Labels[0]+"."+b.Labels[1]] = true
			}
		}
	}
	return m
}

func TestTerraformModules(t *testing.T) {
	dirs, _ := filepath.Glob("terraform/*")
	var modules []string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			modules = append(modules, d)
		}
	}
	if len(modules) == 0 {
		t.Fatal("no modules under terraform/")
	}
	for _, dir := range modules {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := parseModule(t, dir)
			if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
				t.Errorf("%s has no README.md", dir)
			}
			m.checkVariables(t)
			m.checkResources(t)
			m.checkReferences(t)
			m.render(t)
			if tf, err := exec.LookPath("terraform"); err == nil {
				m.terraformValidate(t, tf)
			}
		})
	}
}

// terraformValidate runs terraform validate, which needs the providers:
// without a registry to fetch them from (no network) it is skipped.
func (m *module) terraformValidate(t *testing.T, tf string) {
	lock := filepath.Join(m.dir, ".terraform.lock.hcl")
	_, hadLock := os.Stat(lock)
	defer func() {
		if hadLock != nil {
			os.Remove(lock)
		}
	}()
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(tf, args...)
		cmd.Dir = m.dir
		cmd.Env = append(os.Environ(), "TF_DATA_DIR="+t.TempDir(), "TF_IN_AUTOMATION=1", "NO_COLOR=1")
		return cmd.CombinedOutput()
	}
	if out, err := run("init", "-backend=false", "-input=false", "-no-color"); err != nil {
		if strings.Contains(string(out), "registry.terraform.io") {
			t.Logf("terraform validate skipped: the providers cannot be fetched here")
			return
		}
		t.Fatalf("terraform init: %v\n%s", err, out)
	}
	if out, err := run("validate", "-no-color"); err != nil {
		t.Errorf("terraform validate: %v\n%s", err, out)
	}
}

func (m *module) checkVariables(t *testing.T) {
	for name, b := range m.variables {
		a, ok := b.Body.Attributes["description"]
		if !ok {
			t.Errorf("variable %q has no description", name)
			continue
		}
		if v, diags := a.Expr.Value(nil); diags.HasErrors() || v.Type() != cty.String || len(strings.TrimSpace(v.AsString())) < 10 {
			t.Errorf("variable %q: the description must be a sentence", name)
		}
		if _, ok := b.Body.Attributes["type"]; !ok {
			t.Errorf("variable %q has no type", name)
		}
	}
}

func (m *module) checkResources(t *testing.T) {
	for _, b := range m.blocks {
		if b.Type != "resource" {
			continue
		}
		req, ok := required[b.Labels[0]]
		if !ok {
			t.Errorf("resource type %s: not in the table of required arguments (deploy/terraform_test.go)", b.Labels[0])
			continue
		}
		for _, r := range req {
			_, attr := b.Body.Attributes[r]
			blk := slices.ContainsFunc(b.Body.Blocks, func(x *hclsyntax.Block) bool { return x.Type == r })
			if !attr && !blk {
				t.Errorf("%s.%s lacks the required %q", b.Labels[0], b.Labels[1], r)
			}
		}
	}
}

// checkReferences checks that every var., local. and resource reference
// names something the module declares.
func (m *module) checkReferences(t *testing.T) {
	var visit func(body *hclsyntax.Body)
	visit = func(body *hclsyntax.Body) {
		for _, a := range body.Attributes {
			for _, tr := range a.Expr.Variables() {
				root := tr.RootName()
				attr := func(i int) string {
					if len(tr) > i {
						if x, ok := tr[i].(hcl.TraverseAttr); ok {
							return x.Name
						}
					}
					return ""
				}
				switch {
				case root == "var":
					if _, ok := m.variables[attr(1)]; !ok {
						t.Errorf("%s: var.%s is not declared", a.SrcRange, attr(1))
					}
				case root == "local":
					if _, ok := m.locals[attr(1)]; !ok {
						t.Errorf("%s: local.%s is not declared", a.SrcRange, attr(1))
					}
				case root == "data":
					if !m.resources["data."+attr(1)+"."+attr(2)] {
						t.Errorf("%s: data.%s.%s is not declared", a.SrcRange, attr(1), attr(2))
					}
				case strings.Contains(root, "_"):
					if !m.resources[root+"."+attr(1)] {
						t.Errorf("%s: %s.%s is not declared", a.SrcRange, root, attr(1))
					}
				}
			}
		}
		for _, b := range body.Blocks {
			if b.Type != "lifecycle" { // ignore_changes lists bare argument names
				visit(b.Body)
			}
		}
	}
	for _, b := range m.blocks {
		visit(b.Body)
	}
}

var base64encode = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "s", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

// knownAfterApply stands in for template arguments that come from
// resources (IDs Terraform knows only after apply).
var knownAfterApply = map[string]cty.Value{
	"local_eni":        cty.StringVal("eni-0a2a2a2a2a2a2a2a2"),
	"peer_eni":         cty.StringVal("eni-0b2b2b2b2b2b2b2b2"),
	"witness_table":    cty.StringVal("nva-baton-witness"),
	"route_server_ips": cty.ListVal([]cty.Value{cty.StringVal("10.1.1.4"), cty.StringVal("10.1.1.5")}),
	"subscription_id":  cty.StringVal("00000000-0000-0000-0000-000000000000"),
}

// render evaluates the module's baton configuration template for every
// node in local.nodes with the example inputs (terraform.tfvars.example)
// and checks it with baton's own validation; the user data template, if
// any, goes through cloud-init's schema. It returns the configurations by
// local.nodes key.
func (m *module) render(t *testing.T) map[string]*config.Config {
	tpl := filepath.Join(m.dir, "baton.yaml.tftpl")
	if _, err := os.Stat(tpl); err != nil {
		t.Fatalf("%s: every module renders a baton configuration from baton.yaml.tftpl", m.dir)
	}
	example := filepath.Join(m.dir, "terraform.tfvars.example")
	f, diags := hclparse.NewParser().ParseHCLFile(example)
	if diags.HasErrors() {
		t.Fatalf("parsing %s: %s", example, diags.Error())
	}
	given, _ := f.Body.JustAttributes()
	vars := map[string]cty.Value{}
	for name, b := range m.variables {
		if a, ok := given[name]; ok {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("%s: %s", example, diags.Error())
			}
			vars[name] = v
		} else if d, ok := b.Body.Attributes["default"]; ok {
			v, diags := d.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("variable %s default: %s", name, diags.Error())
			}
			vars[name] = v
		} else {
			t.Errorf("%s does not set the required variable %q", example, name)
		}
	}
	for name := range given {
		if _, ok := m.variables[name]; !ok {
			t.Errorf("%s sets %q, which the module does not declare", example, name)
		}
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)},
		Functions: map[string]function.Function{"base64encode": base64encode, "join": stdlib.JoinFunc, "jsonencode": stdlib.JSONEncodeFunc},
	}
	nodesExpr, ok := m.locals["nodes"]
	if !ok {
		t.Fatal("the module has no local.nodes (one entry per baton node)")
	}
	nodes, diags := nodesExpr.Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("evaluating local.nodes: %s", diags.Error())
	}
	render := func(path string, extra map[string]cty.Value) string {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		expr, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("parsing %s: %s", path, diags.Error())
		}
		tctx := ctx.NewChild()
		tctx.Variables = extra
		v, diags := expr.Value(tctx)
		if diags.HasErrors() {
			t.Fatalf("rendering %s: %s", path, diags.Error())
		}
		return v.AsString()
	}
	configs := map[string]*config.Config{}
	for key, node := range nodes.AsValueMap() {
		extra := map[string]cty.Value{"node": node}
		for k, v := range knownAfterApply {
			extra[k] = v
		}
		for k, v := range vars {
			extra[k] = v
		}
		yaml := render(tpl, extra)
		cfg, err := config.Parse([]byte(yaml), m.dir+"/baton.yaml.tftpl["+key+"]", nil)
		if err != nil {
			t.Errorf("node %s: the rendered baton configuration does not validate: %v\n%s", key, err, yaml)
		}
		configs[key] = cfg
		ud := filepath.Join(m.dir, "user-data.tftpl")
		if _, err := os.Stat(ud); err != nil {
			continue
		}
		extra["baton_yaml"] = cty.StringVal(yaml)
		userData := render(ud, extra)
		out := filepath.Join(t.TempDir(), "user-data.yaml")
		if err := os.WriteFile(out, []byte(userData), 0o600); err != nil {
			t.Fatal(err)
		}
		if schema, err := exec.LookPath("cloud-init"); err == nil {
			if b, err := exec.Command(schema, "schema", "--config-file", out).CombinedOutput(); err != nil {
				t.Errorf("node %s: rendered user data fails cloud-init schema: %v\n%s\n%s", key, err, b, userData)
			}
		} else if os.Getenv("CI") == "true" {
			t.Fatal("cloud-init is missing and CI=true")
		}
	}
	return configs
}
