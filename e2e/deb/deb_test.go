// Package deb checks the Debian package that make deb builds: its files,
// modes, conffiles and maintainer scripts (dpkg-deb -c / -I), and that the
// unpacked binary answers, documents every command and accepts the shipped
// example configuration.
package deb

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// debFile returns the amd64 package under test: $DEB (make test sets it)
// or one built with make deb-amd64.
func debFile(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DEB"); p != "" {
		return p
	}
	cmd := exec.Command("make", "-C", "../..", "deb-amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb-amd64: %v\n%s", err, out)
	}
	m, _ := filepath.Glob("../../dist/baton_*_amd64.deb")
	if len(m) == 0 {
		t.Fatal("make deb-amd64 left no dist/baton_*_amd64.deb")
	}
	slices.Sort(m)
	return m[len(m)-1]
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPackage(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dpkg-deb missing and CI=true")
		}
		t.Skip("dpkg-deb missing")
	}
	deb := debFile(t)
	if !regexp.MustCompile(`/baton_[0-9][^_/]*_amd64\.deb$`).MatchString(deb) {
		t.Errorf("package file %s: want baton_<version>_amd64.deb with a version starting with a digit", deb)
	}

	// Files and their modes, as dpkg-deb -c lists them ("-rwxr-xr-x root/root ... ./usr/bin/baton").
	modes := map[string]string{}
	for _, line := range strings.Split(run(t, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 {
			modes[strings.TrimPrefix(f[len(f)-1], ".")] = f[0]
		}
	}
	for path, mode := range map[string]string{
		"/usr/bin/baton":                                            "-rwxr-xr-x",
		"/lib/systemd/system/baton.service":                         "-rw-r--r--",
		"/lib/systemd/system/baton-peerings.service":                "-rw-r--r--",
		"/etc/baton/":                                               "drwx------",
		"/etc/baton/baton.yaml.example":                             "-rw-r--r--",
		"/usr/share/baton/hooks/notify-webhook":                     "-rwxr-xr-x",
		"/usr/share/baton/hooks/systemctl-reload":                   "-rwxr-xr-x",
		"/usr/share/bash-completion/completions/baton":              "-rw-r--r--",
		"/usr/share/doc/baton/README.md":                            "-rw-r--r--",
		"/usr/share/doc/baton/examples/preferred-master/nva-a.yaml": "-rw-r--r--",
	} {
		if got, ok := modes[path]; !ok {
			t.Errorf("%s is not in the package", path)
		} else if got != mode {
			t.Errorf("%s has mode %s, want %s", path, got, mode)
		}
	}

	info := run(t, "dpkg-deb", "-I", deb)
	for _, want := range []string{"Package: baton", "Architecture: amd64", "postinst", "prerm", "postrm", "conffiles"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	dir := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, filepath.Join(dir, "DEBIAN"))
	conffiles, err := os.ReadFile(filepath.Join(dir, "DEBIAN", "conffiles"))
	if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/baton/baton.yaml.example" {
		t.Errorf("conffiles = %q (%v), want /etc/baton/baton.yaml.example", conffiles, err)
	}

	// The unpacked binary and files.
	run(t, "dpkg-deb", "-x", deb, dir)
	bin := filepath.Join(dir, "usr/bin/baton")
	if out := run(t, bin, "version"); !strings.HasPrefix(out, "baton ") {
		t.Errorf("baton version = %q", out)
	}
	unit, _ := os.ReadFile(filepath.Join(dir, "lib/systemd/system/baton.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/baton run") {
		t.Errorf("baton.service does not start /usr/bin/baton:\n%s", unit)
	}
	// baton validate also opens the key files the example names: only
	// they may be missing (go test ./deploy/ parses the example itself).
	out, err := exec.Command(bin, "validate", "--config", filepath.Join(dir, "etc/baton/baton.yaml.example")).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "no such file or directory") {
		t.Errorf("baton validate baton.yaml.example: %v\n%s", err, out)
	}

	// baton help lists the commands; each has its own help, and the bash
	// completion offers exactly those.
	usage, _ := exec.Command(bin, "help").CombinedOutput()
	var commands []string
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z]+)  `).FindAllStringSubmatch(string(usage), -1) {
		commands = append(commands, m[1])
		if out := run(t, bin, "help", m[1]); !strings.Contains(out, "usage: baton "+m[1]) {
			t.Errorf("baton help %s prints no usage line:\n%s", m[1], out)
		}
	}
	if len(commands) < 10 {
		t.Fatalf("baton help lists %d commands:\n%s", len(commands), usage)
	}
	completion, _ := os.ReadFile(filepath.Join(dir, "usr/share/bash-completion/completions/baton"))
	m := regexp.MustCompile(`local commands="([^"]*)"`).FindSubmatch(completion)
	if m == nil {
		t.Fatal("bash completion has no command list")
	}
	got := strings.Fields(string(m[1]))
	want := append(slices.Clone(commands), "help")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("bash completion offers %q, baton help lists %q", got, want)
	}
}
