// Package deploy holds baton's deployment files (units, package, cloud-init,
// Terraform). Its tests check them: cloud-init user data against
// cloud-init's own schema, and every baton configuration they write
// against baton's validation.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/batonha/baton/internal/config"
)

func TestExampleConfig(t *testing.T) {
	if _, err := config.Load("baton.yaml.example", nil); err != nil {
		t.Errorf("baton.yaml.example: %v", err)
	}
}

func TestCloudInit(t *testing.T) {
	files, _ := filepath.Glob("cloud-init/*.yaml")
	if len(files) < 2 {
		t.Fatalf("want the appliance and the scale-set user data in cloud-init/, have %q", files)
	}
	schema, err := exec.LookPath("cloud-init")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("cloud-init is missing and CI=true (scripts/deps.sh test installs it)")
		}
		t.Log("cloud-init missing: schema not checked")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if schema != "" {
				if out, err := exec.Command(schema, "schema", "--config-file", f).CombinedOutput(); err != nil {
					t.Errorf("cloud-init schema --config-file %s: %v\n%s", f, err, out)
				}
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				WriteFiles []struct {
					Path    string `yaml:"path"`
					Content string `yaml:"content"`
				} `yaml:"write_files"`
			}
			if err := yaml.Unmarshal(data, &doc); err != nil {
				t.Fatalf("parsing %s: %v", f, err)
			}
			found := false
			for _, w := range doc.WriteFiles {
				if w.Path != "/etc/baton/baton.yaml" {
					continue
				}
				found = true
				if _, err := config.Parse([]byte(w.Content), f+": /etc/baton/baton.yaml", nil); err != nil {
					t.Errorf("the baton.yaml it writes does not validate: %v", err)
				}
			}
			if !found {
				t.Errorf("%s writes no /etc/baton/baton.yaml", f)
			}
		})
	}
}
