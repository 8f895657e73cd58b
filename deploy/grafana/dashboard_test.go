// Package grafana holds baton's Grafana dashboard (baton.json); its test
// checks that every metric the dashboard queries is one baton exports.
package grafana

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	metricRe  = regexp.MustCompile(`\bbaton_[a-z0-9_]+\b`)
	exportRe  = regexp.MustCompile(`"(baton_[a-z0-9_]+)"`)
	histogram = regexp.MustCompile(`_(bucket|sum|count)$`)
)

// exported collects the metric names baton's code registers: the string
// literals named baton_* in its non-test sources.
func exported(t *testing.T) map[string]bool {
	names := map[string]bool{}
	err := filepath.WalkDir("../../internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range exportRe.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestDashboardQueriesOnlyExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("baton.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("baton.json: %v", err)
	}
	names := exported(t)
	if len(names) < 20 || !names["baton_role"] {
		t.Fatalf("found only %d exported metric names: the source scan is broken", len(names))
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	used := 0
	for _, e := range exprs {
		for _, m := range metricRe.FindAllString(e, -1) {
			used++
			if !names[m] && !names[histogram.ReplaceAllString(m, "")] {
				t.Errorf("the dashboard queries %s, which baton does not export (in %q)", m, e)
			}
		}
	}
	if used == 0 {
		t.Fatal("the dashboard queries no baton metric")
	}
}
