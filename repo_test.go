package baton_test

// Repository-wide rules, checked on every `make test` and `make lint`:
// package documentation, the layering of the packages, a tidy go.mod, and
// metric names. Each rule names what breaks it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/batonha/baton"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath  string
	Dir         string
	Name        string
	Doc         string
	GoFiles     []string
	Imports     []string
	Deps        []string
	TestImports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list -json ./...: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(&out)
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// rel is a package's path inside the module ("" for the root).
func rel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if len(p.GoFiles) == 0 {
			continue
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment (add one: // Package %s ...)", rel(p.ImportPath), p.Name)
		}
	}
}

// testTopology reports whether a package is test topology: the lab, test
// helpers, end-to-end suites and benchmarks. Only tests and other test
// topology may import it.
func testTopology(path string) bool {
	r := rel(path)
	for _, prefix := range []string{"internal/lab", "e2e", "bench", "cmd/baton-lab"} {
		if r == prefix || strings.HasPrefix(r, prefix+"/") {
			return true
		}
	}
	return strings.HasSuffix(r, "test") // awstest, linuxtest, labtest
}

// tier orders the product's layers: a package may import only packages of
// its own tier or a lower one (provider ← action ← daemon ← cli).
func tier(path string) int {
	r := rel(path)
	switch {
	case strings.HasPrefix(r, "cmd/"):
		return 5
	case r == "internal/cli":
		return 4
	case r == "internal/daemon":
		return 3
	case r == "internal/action" || strings.HasPrefix(r, "internal/action/"):
		return 2
	case strings.HasPrefix(r, "internal/provider/"):
		return 1
	}
	return 0 // everything else: not ordered by this rule
}

var tierName = map[int]string{1: "provider", 2: "action", 3: "daemon", 4: "cli", 5: "cmd"}

func TestLayering(t *testing.T) {
	for _, p := range listPackages(t) {
		from := p.ImportPath
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if testTopology(imp) && !testTopology(from) {
				t.Errorf("%s imports test topology %s: only tests, the lab, e2e and bench may", rel(from), rel(imp))
			}
			if tf, ti := tier(from), tier(imp); tf != 0 && ti > tf {
				t.Errorf("%s (%s) imports %s (%s): dependencies point provider ← action ← daemon ← cli",
					rel(from), tierName[tf], rel(imp), tierName[ti])
			}
			if tier(from) == 0 && tier(imp) >= 3 {
				t.Errorf("%s imports %s: only the CLI and main wire the daemon", rel(from), rel(imp))
			}
		}
	}
}

// cloudSDKs are the module paths of the clients for the world outside.
var cloudSDKs = []string{
	"github.com/aws/aws-sdk-go-v2",
	"github.com/Azure/azure-sdk-for-go",
	"go.etcd.io/etcd",
	"github.com/osrg/gobgp",
}

// sdkDebt lists the packages outside internal/provider that still call a
// cloud SDK directly. The list may only shrink: an entry that no longer
// needs its exception fails the test, so it is removed when it is paid.
var sdkDebt = []string{
	"internal/action/addresses",        // SDK request and response types in its cloud code
	"internal/action/dns",              // Route 53 and armdns clients
	"internal/action/routes",           // SDK request and response types in its cloud code
	"internal/action/routes/fencerace", // drives both clouds' SDK fakes
	"internal/peerings",                // its own EC2 and ARM interfaces
	"internal/witness",                 // etcd, blob and DynamoDB clients
}

// localParts run on the appliance alone: they must build without any
// cloud SDK, also through the configuration types they take.
var localParts = []string{
	"internal/check",
	"internal/action/hooks",
	"internal/action/probe",
	"internal/config/rule",
	"internal/heartbeat",
	"internal/role",
}

func TestLocalPartsNeedNoCloudSDK(t *testing.T) {
	seen := 0
	for _, p := range listPackages(t) {
		if !slices.Contains(localParts, rel(p.ImportPath)) {
			continue
		}
		seen++
		for _, dep := range p.Deps {
			for _, sdk := range cloudSDKs {
				if dep == sdk || strings.HasPrefix(dep, sdk+"/") {
					t.Errorf("%s depends on %s: a local part must not pull in a cloud SDK", rel(p.ImportPath), dep)
				}
			}
		}
	}
	if seen != len(localParts) {
		t.Errorf("found %d of the %d local parts: update localParts", seen, len(localParts))
	}
}

func TestCloudSDKsOnlyInProviders(t *testing.T) {
	using := map[string]bool{}
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		if strings.HasPrefix(r, "internal/provider/") || testTopology(p.ImportPath) {
			continue
		}
		for _, imp := range p.Imports {
			for _, sdk := range cloudSDKs {
				if imp == sdk || strings.HasPrefix(imp, sdk+"/") {
					using[r] = true
					if !slices.Contains(sdkDebt, r) {
						t.Errorf("%s imports %s: cloud SDKs belong behind an interface in internal/provider", r, imp)
					}
				}
			}
		}
	}
	for _, r := range sdkDebt {
		if !using[r] {
			t.Errorf("%s no longer imports a cloud SDK: remove it from sdkDebt", r)
		}
	}
}

func TestShippedBinaryHasNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./cmd/baton").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/baton: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" || strings.HasPrefix(dep, module+"/") && testTopology(dep) {
			t.Errorf("bin/baton links %s", dep)
		}
	}
}

func TestModTidy(t *testing.T) {
	out, err := exec.Command("go", "mod", "tidy", "-diff").CombinedOutput()
	if err != nil {
		t.Fatalf("go mod tidy would change go.mod or go.sum (run go mod tidy):\n%s", out)
	}
}

// metric is one metric name found in the source.
type metric struct {
	name  string
	opts  string // the *Opts type it is declared with; "" for NewDesc
	where string
}

// sourceMetrics finds every metric declared in the product's source: the
// Name of a prometheus *Opts literal and the first argument of NewDesc.
func sourceMetrics(t *testing.T) []metric {
	t.Helper()
	var found []metric
	fset := token.NewFileSet()
	err := filepath.WalkDir("internal", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || testTopology(module+"/"+filepath.Dir(path)) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
					return true
				}
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
						if name, ok := stringLit(kv.Value); ok {
							found = append(found, metric{name, sel.Sel.Name, fset.Position(kv.Pos()).String()})
						}
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "NewDesc" || len(n.Args) == 0 {
					return true
				}
				if name, ok := stringLit(n.Args[0]); ok {
					found = append(found, metric{name, "", fset.Position(n.Pos()).String()})
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatalf("reading the source: %v", err)
	}
	if len(found) < 20 {
		t.Fatalf("found only %d metrics in the source", len(found))
	}
	return found
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

var metricName = regexp.MustCompile(`^baton_[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// badUnit matches units Prometheus names in their base form only.
var badUnit = regexp.MustCompile(`_(ms|milliseconds|microseconds|us|ns|minutes|hours|kb|mb|kilobytes|megabytes|percent)(_|$)`)

func TestMetricNames(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, m := range sourceMetrics(t) {
		if prev, ok := seen[m.name]; ok && prev != m.where {
			continue // declared twice (e.g. once per backend): checked once
		}
		seen[m.name] = m.where
		switch {
		case !metricName.MatchString(m.name):
			t.Errorf("%s: metric %q: names are baton_ followed by lower-case words joined by _", m.where, m.name)
		case badUnit.MatchString(m.name):
			t.Errorf("%s: metric %q: use base units (seconds, bytes, ratio)", m.where, m.name)
		case m.opts != "" && (m.opts == "CounterOpts") != strings.HasSuffix(m.name, "_total"):
			t.Errorf("%s: metric %q: counters, and only counters, end in _total", m.where, m.name)
		case strings.HasSuffix(m.name, "_count") || strings.HasSuffix(m.name, "_sum") || strings.HasSuffix(m.name, "_bucket"):
			t.Errorf("%s: metric %q: _count, _sum and _bucket are reserved for histograms", m.where, m.name)
		}
		if !bytes.Contains(readme, []byte("`"+m.name)) {
			t.Errorf("%s: metric %s is not documented in README.md's Metrics section", m.where, m.name)
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d metrics: %s", len(names), strings.Join(names, " "))
}

// TestReadmeLayout checks that the README's Layout section names every
// package of the product, the lab and the tests, one per line.
func TestReadmeLayout(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	_, block, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatal("the Layout section has no code block")
	}
	block, _, _ = strings.Cut(block, "```")
	listed := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[strings.TrimSuffix(f[0], "/")] = true
		}
	}
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		if r == "" || len(p.GoFiles) == 0 {
			continue
		}
		if !listed[r] {
			t.Errorf("README.md's Layout does not list %s/", r)
		}
		delete(listed, r)
	}
	for r := range listed {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("README.md's Layout lists %s/, which does not exist", r)
		}
	}
}
