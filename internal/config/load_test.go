package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func equalConfig(a, b Config) bool { return reflect.DeepEqual(a, b) }

// asErrors fails the test unless err is a non-empty Errors.
func asErrors(t *testing.T, err error) Errors {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("want config.Errors, got %T %v", err, err)
	}
	return errs
}

type at struct {
	line int
	path string
	msg  string // substring
}

func TestManyMistakesAllReportedWithLines(t *testing.T) {
	_, err := Load("testdata/bad.yaml", nil)
	errs := asErrors(t, err)
	want := []at{
		{3, "node.name", "not a valid name"},
		{4, "node.priority", "between 1 and 254 (got 300)"},
		{5, "node.preemt", `unknown key (did you mean "preempt"?)`},
		{7, "log.level", `(got "verbose")`},
		{8, "heartbeat.key_file", "required"},
		{9, "heartbeat.interval", "must be at least 10ms (got 5ms)"},
		{10, "heartbeat.misses", "at least 1"},
		{11, "heartbeat.listen", "not host:port"},
		{12, "heartbeat.replay_window", "between 64 and 4096"},
		{17, "peer.paths[0].address", "not host:port"},
		{18, "peer.paths[1].name", "already the name of peer.paths[0]"},
		{20, "peer.paths[1].source", "not an IP address"},
		{24, "peer.checks[0].target", "must be an IP address"},
		{25, "peer.checks[0].timeout", "less than interval"},
		{26, "peer.channel.address", "required when the channel is enabled"},
		{29, "checks[0].command", "required for exec checks"},
		{31, "checks[0].rise", "at least 1 (got 0)"},
		{32, "checks[1].name", "already the name of checks[0]"},
		{34, "checks[1].target", "not host:port"},
		{35, "checks[1].interval", "has no unit"},
		{37, "probe.mode", "one of http, tcp, off"},
		{38, "probe.unconnected_after", "greater than 0"},
		{40, "hooks.active[0]", "absolute path"},
		{41, "api.token_file", "required when api.listen is set"},
		{44, "metrics.listen", "not host:port"},
		{45, "bogus", "unknown key"},
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i := range min(len(errs), len(want)) {
		e, w := errs[i], want[i]
		if e.Line != w.line || e.Path != w.path || !strings.Contains(e.Msg, w.msg) || e.Source != "testdata/bad.yaml" {
			t.Errorf("error %d = %v\n want testdata/bad.yaml:%d: %s: ...%s...", i, e, w.line, w.path, w.msg)
		}
	}
}

// TestGoldenErrors pins the exact text a user sees for a bad file and bad
// environment. Run with -update to rewrite it.
func TestGoldenErrors(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin", // not ours: ignored
		"BATON_HOOKS_STANDBY=[relative.sh]",
		"BATON_NODE_PREEMPT_DELAY=5",
		"BATON_PEER_CHANEL_ADDRESS=10.9.0.2:5406",
	}
	_, err := Load("testdata/bad.yaml", environ)
	got := asErrors(t, err).Error() + "\n"
	golden := filepath.Join("testdata", "bad.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("error output differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d example files, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.ToSlash(f), func(t *testing.T) {
			c, err := Load(f, nil)
			if err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
			// Each pair's nodes must name each other and share path names.
			if c.Node.Name == c.Peer.Name {
				t.Errorf("node and peer are both %q", c.Node.Name)
			}
		})
	}
}

// TestExamplePairsMirror checks that the two nodes of each example pair
// agree: each names the other as peer, path names match, and the
// preference works out as documented.
func TestExamplePairsMirror(t *testing.T) {
	dirs, err := filepath.Glob("../../examples/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			a, err := Load(filepath.Join(dir, "nva-a.yaml"), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Load(filepath.Join(dir, "nva-b.yaml"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.Peer.Name != b.Node.Name || b.Peer.Name != a.Node.Name {
				t.Errorf("peers do not name each other: a=%s→%s b=%s→%s", a.Node.Name, a.Peer.Name, b.Node.Name, b.Peer.Name)
			}
			if len(a.Peer.Paths) != len(b.Peer.Paths) {
				t.Fatalf("path counts differ")
			}
			for i := range a.Peer.Paths {
				if a.Peer.Paths[i].Name != b.Peer.Paths[i].Name {
					t.Errorf("path %d named %q and %q", i, a.Peer.Paths[i].Name, b.Peer.Paths[i].Name)
				}
			}
			_, pa, _ := net.SplitHostPort(a.Probe.Listen)
			_, pb, _ := net.SplitHostPort(b.Probe.Listen)
			if pa != pb || a.Probe.Mode != b.Probe.Mode { // the HA check port is the same on both
				t.Errorf("probe differs: %s %s vs %s %s", a.Probe.Mode, a.Probe.Listen, b.Probe.Mode, b.Probe.Listen)
			}
			if a.Heartbeat.Interval != b.Heartbeat.Interval || a.Node.Preempt != b.Node.Preempt {
				t.Errorf("pair-wide settings differ")
			}
		})
	}
}

// TestExampleScenarios pins what each example is meant to show.
func TestExampleScenarios(t *testing.T) {
	lb, err := Load("../../examples/azure-lb-pair/nva-a.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Node.Preempt || lb.Probe.Mode != "http" || lb.Probe.Listen != ":8444" || len(lb.Peer.Paths) < 2 {
		t.Errorf("azure-lb-pair: want no preferred host, http probe on :8444, two paths; got %+v %+v", lb.Node, lb.Probe)
	}
	pm, err := Load("../../examples/preferred-master/nva-a.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Load("../../examples/preferred-master/nva-b.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pm.Node.Preempt || pm.Node.Priority != 200 || pb.Node.Priority != 100 || pm.Node.PreemptDelay <= 0 {
		t.Errorf("preferred-master: want preempt, 200 vs 100 and a delay; got %+v / %+v", pm.Node, pb.Node)
	}
	if len(pm.Checks) == 0 || len(pm.Hooks.Active) == 0 || pm.Probe.Listen != ":8444" {
		t.Errorf("preferred-master: want checks, hooks and the :8444 probe")
	}
}

// TestExamplesRoundTrip writes each loaded example back out as YAML and
// loads that again: nothing may change.
func TestExamplesRoundTrip(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "testdata/full.yaml")
	for _, f := range files {
		t.Run(filepath.ToSlash(f), func(t *testing.T) {
			c, err := Load(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(out, "marshalled.yaml", nil)
			if err != nil {
				t.Fatalf("marshalled config does not load:\n%v\n%s", err, out)
			}
			if !equalConfig(*c, *again) {
				t.Errorf("round trip changed the config:\n%+v\n%+v", *c, *again)
			}
			if !strings.Contains(string(out), "interval: ") || strings.Contains(string(out), "interval: 1000000000") {
				t.Errorf("durations should be written as Go durations:\n%s", out)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want fs.ErrNotExist, got %v", err)
	}
	if !strings.Contains(err.Error(), "reading config file") || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("error %q should say what was read", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := []string{
		"HOME=/root",
		"BATON_NODE_PRIORITY=120",
		"BATON_NODE_PREEMPT=true",
		"BATON_HEARTBEAT_INTERVAL=100ms",
		"BATON_PEER_CHANNEL_ADDRESS=10.9.0.2:5406",
		`BATON_PEER_PATHS=[{name: hb, address: "10.9.0.2:5405"}, {name: mgmt, address: "10.8.0.2:5405", source: 10.8.0.1}]`,
		"BATON_HOOKS_ACTIVE=[/etc/baton/a.sh]",
		"BATON_NODE_NAME=from-env",
		"BATON_NODE_NAME=last-wins",
	}
	c, err := Parse([]byte(minimalYAML), "min.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Priority != 120 || !c.Node.Preempt || c.Node.Name != "last-wins" {
		t.Errorf("node = %+v", c.Node)
	}
	if c.Heartbeat.Interval != 100*time.Millisecond {
		t.Errorf("heartbeat.interval = %s", c.Heartbeat.Interval)
	}
	if c.Peer.Channel.Address != "10.9.0.2:5406" || !c.Peer.Channel.Enabled {
		t.Errorf("channel = %+v: want the env address and enabled by default", c.Peer.Channel)
	}
	wantPaths := []Path{{Name: "hb", Address: "10.9.0.2:5405"}, {Name: "mgmt", Address: "10.8.0.2:5405", Source: "10.8.0.1"}}
	if !reflect.DeepEqual(c.Peer.Paths, wantPaths) {
		t.Errorf("paths = %+v, want %+v", c.Peer.Paths, wantPaths)
	}
	if !reflect.DeepEqual(c.Hooks.Active, []string{"/etc/baton/a.sh"}) {
		t.Errorf("hooks.active = %q", c.Hooks.Active)
	}
}

func TestEnvListElementsGetDefaults(t *testing.T) {
	c, err := Parse([]byte(minimalYAML), "min.yaml", []string{
		`BATON_CHECKS=[{name: up, type: interface, interface: eth0, rise: 5}]`,
		`BATON_PEER_CHECKS=[{name: ping, type: icmp, target: 10.9.0.2}]`,
		"BATON_HEARTBEAT_MISSES=7",
	})
	if err != nil {
		t.Fatal(err)
	}
	if ch := c.Checks[0]; ch.Rise != 5 || ch.Fall != 3 || ch.Interval != time.Second {
		t.Errorf("check = %+v, want rise 5 and defaults", ch)
	}
	if pc := c.Peer.Checks[0]; pc.Misses != 7 || pc.Timeout != 500*time.Millisecond {
		t.Errorf("peer check = %+v, want misses from heartbeat.misses (7)", pc)
	}
}

func TestEnvErrors(t *testing.T) {
	cases := []struct {
		name string
		env  string
		path string
		msg  string
	}{
		{"unknown variable", "BATON_NODE_NAMES=x", "", "unknown variable"},
		{"unknown suggests", "BATON_HEARTBEAT_INTERVALL=1s", "", "did you mean BATON_HEARTBEAT_INTERVAL?"},
		{"section is not a key", "BATON_PEER_CHANNEL=x", "", "unknown variable"},
		{"bad int", "BATON_NODE_PRIORITY=high", "node.priority", `expected an integer, got "high"`},
		{"empty int", "BATON_NODE_PRIORITY=", "node.priority", "empty value"},
		{"bare duration", "BATON_HEARTBEAT_INTERVAL=100", "heartbeat.interval", "has no unit"},
		{"bad duration", "BATON_HEARTBEAT_INTERVAL=fast", "heartbeat.interval", "invalid duration"},
		{"bad bool", "BATON_NODE_PREEMPT=yes", "node.preempt", "expected true or false"},
		{"list not flow", "BATON_HOOKS_ACTIVE=/etc/baton/a.sh", "hooks.active", "YAML flow sequence"},
		{"list bad yaml", "BATON_HOOKS_ACTIVE=[a, b", "hooks.active", "invalid YAML"},
		{"list element unknown key", `BATON_PEER_PATHS=[{name: hb, address: "10.9.0.2:5405", sauce: x}]`, "peer.paths[0].sauce", "unknown key"},
		{"list element missing key", `BATON_PEER_PATHS=[{name: hb}]`, "peer.paths[0].address", "required"},
		{"valid value failing a rule", "BATON_NODE_PRIORITY=0", "node.priority", "between 1 and 254"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(minimalYAML), "min.yaml", []string{tc.env})
			errs := asErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("want 1 error, got:\n%v", errs)
			}
			e := errs[0]
			name, _, _ := strings.Cut(tc.env, "=")
			if e.Source != "env "+name || e.Line != 0 || e.Path != tc.path || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got %q (source %q line %d path %q), want source %q path %q msg ~%q",
					e.Error(), e.Source, e.Line, e.Path, "env "+name, tc.path, tc.msg)
			}
			if !strings.HasPrefix(e.Error(), "env "+name+": ") {
				t.Errorf("Error() = %q should start with the variable", e.Error())
			}
		})
	}
}

// An environment value that replaces a list from the file drops the file's
// locations for the old elements.
func TestEnvReplacesFileList(t *testing.T) {
	yaml := minimalYAML + "checks:\n  - name: a\n    type: interface\n    interface: eth0\n  - name: b\n    type: interface\n    interface: eth1\n"
	_, err := Parse([]byte(yaml), "f.yaml", []string{"BATON_CHECKS=[{name: x, type: exec}]"})
	errs := asErrors(t, err)
	if len(errs) != 1 || errs[0].Path != "checks[0].command" || errs[0].Source != "env BATON_CHECKS" {
		t.Fatalf("got:\n%v\nwant one error at checks[0].command from env BATON_CHECKS", errs)
	}
}

func TestEnvVarNamesUnique(t *testing.T) {
	keys, err := envKeys(reflect.TypeFor[Config]())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"BATON_NODE_PRIORITY":           "node.priority",
		"BATON_NODE_PREEMPT_DELAY":      "node.preempt_delay",
		"BATON_PEER_CHANNEL_ADDRESS":    "peer.channel.address",
		"BATON_PEER_PATHS":              "peer.paths",
		"BATON_CHECKS":                  "checks",
		"BATON_PROBE_UNCONNECTED_AFTER": "probe.unconnected_after",
	} {
		if got := keys[name].path; got != want {
			t.Errorf("%s sets %q, want %q", name, got, want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		doc  string // appended to minimalYAML
		want at
	}{
		{"duplicate key", "log:\n  level: info\n  level: debug\n", at{12, "log.level", "duplicate key (first set on line 11)"}},
		{"duplicate section", "node:\n  priority: 5\n", at{10, "node", "duplicate key (first set on line 1)"}},
		{"unknown key with suggestion", "probe:\n  listen_on: \":1\"\n", at{11, "probe.listen_on", `did you mean "listen"?`}},
		{"unknown key far from any", "probe:\n  zzzzzzzz: 1\n", at{11, "probe.zzzzzzzz", "unknown key"}},
		{"bare number duration", "probe:\n  unconnected_after: 30\n", at{11, "probe.unconnected_after", "duration 30 has no unit"}},
		{"zero duration needs a unit", "hooks:\n  timeout: 0\n", at{11, "hooks.timeout", "duration 0 has no unit"}},
		{"quoted int", "checks:\n  - {name: x, type: interface, interface: eth0, rise: \"2\"}\n", at{11, "checks[0].rise", `expected an integer, got "2"`}},
		{"float for int", "checks:\n  - {name: x, type: interface, interface: eth0, rise: 2.5}\n", at{11, "checks[0].rise", `expected an integer, got "2.5"`}},
		{"list for string", "log:\n  level: [info]\n", at{11, "log.level", "expected a string, got a list"}},
		{"mapping for list", "hooks:\n  active: {a: b}\n", at{11, "hooks.active", "expected a list, got a mapping"}},
		{"scalar for section", "probe: http\n", at{10, "probe", `expected a mapping, got "http"`}},
		{"null keeps default", "probe:\n  listen:\nlog: ~\n", at{0, "", ""}},
		{"quoted off is a string", "probe: {mode: \"off\"}\nmetrics: {listen: off}\n", at{0, "", ""}},
		{"int overflow", "checks:\n  - {name: x, type: interface, interface: eth0, rise: 99999999999999999999}\n", at{11, "checks[0].rise", "expected an integer"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(minimalYAML+tc.doc), "f.yaml", nil)
			if tc.want.path == "" {
				if err != nil {
					t.Fatalf("want no error, got:\n%v", err)
				}
				return
			}
			errs := asErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("want 1 error, got:\n%v", errs)
			}
			e := errs[0]
			if e.Line != tc.want.line || e.Path != tc.want.path || !strings.Contains(e.Msg, tc.want.msg) {
				t.Errorf("got %v\nwant f.yaml:%d: %s: ...%s...", e, tc.want.line, tc.want.path, tc.want.msg)
			}
		})
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := Parse([]byte("node:\n  name: a\n   bad: indent\n"), "s.yaml", nil)
	errs := asErrors(t, err)
	if len(errs) != 1 || errs[0].Line != 3 || !strings.HasPrefix(errs[0].Error(), "s.yaml:3: invalid YAML: ") {
		t.Fatalf("got %v", errs)
	}
}

func TestSecondDocumentRejected(t *testing.T) {
	_, err := Parse([]byte(minimalYAML+"---\nnode: {name: c}\n"), "m.yaml", nil)
	errs := asErrors(t, err)
	if len(errs) != 1 || errs[0].Line != 10 || !strings.Contains(errs[0].Msg, "second document") {
		t.Fatalf("got %v", errs)
	}
}

func TestEmptyFileReportsRequiredKeys(t *testing.T) {
	_, err := Parse(nil, "empty.yaml", nil)
	errs := asErrors(t, err)
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
		if e.Source != "empty.yaml" || e.Line != 0 {
			t.Errorf("error %v: want source empty.yaml and no line", e)
		}
	}
	// node.name defaults to the host name.
	if got := strings.Join(paths, " "); got != "heartbeat.key_file peer.name peer.paths" {
		t.Errorf("errors at %s", got)
	}
	if !strings.HasPrefix(errs.Error(), "empty.yaml: heartbeat.key_file: required") {
		t.Errorf("Error() = %q", errs.Error())
	}
}

func TestNotAMapping(t *testing.T) {
	_, err := Parse([]byte("- a\n- b\n"), "l.yaml", nil)
	errs := asErrors(t, err)
	if len(errs) != 1 || errs[0].Line != 1 || !strings.Contains(errs[0].Msg, "expected a mapping, got a list") {
		t.Fatalf("want only the shape error, got:\n%v", errs)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	doc := minimalYAML + `checks:
  - &iface
    name: up0
    type: interface
    interface: eth0
    rise: 4
  - <<: *iface
    name: up1
    interface: eth1
`
	c, err := Parse([]byte(doc), "a.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Checks) != 2 || c.Checks[1].Name != "up1" || c.Checks[1].Interface != "eth1" || c.Checks[1].Rise != 4 {
		t.Fatalf("checks = %+v", c.Checks)
	}
}

func TestAliasBomb(t *testing.T) {
	// Each anchor merges the previous one ten times: 10^8 expansions.
	var b strings.Builder
	b.WriteString(minimalYAML + "m0: &m0 {name: x}\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "m%d: &m%d {<<: [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("checks:\n  - <<: *m8\n")
	_, err := Parse([]byte(b.String()), "bomb.yaml", nil)
	errs := asErrors(t, err)
	found := false
	for _, e := range errs {
		found = found || (e.Path == "checks[0]" && strings.Contains(e.Msg, "document too large"))
	}
	if !found {
		t.Fatalf("want a too-large error at checks[0], got:\n%v", errs)
	}
}

func TestErrorFormats(t *testing.T) {
	cases := []struct {
		e    FieldError
		want string
	}{
		{FieldError{Path: "heartbeat.interval", Line: 12, Source: "baton.yaml", Msg: "must be at least 10ms (got 5ms)"},
			"baton.yaml:12: heartbeat.interval: must be at least 10ms (got 5ms)"},
		{FieldError{Path: "node.name", Source: "baton.yaml", Msg: "required"}, "baton.yaml: node.name: required"},
		{FieldError{Path: "node.priority", Source: "env BATON_NODE_PRIORITY", Msg: "x"}, "env BATON_NODE_PRIORITY: node.priority: x"},
		{FieldError{Path: "node.name", Msg: "required"}, "node.name: required"},
		{FieldError{Source: "f.yaml", Line: 2, Msg: "invalid YAML: x"}, "f.yaml:2: invalid YAML: x"},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	errs := Errors{cases[0].e, cases[1].e}
	if got := errs.Error(); got != cases[0].want+"\n"+cases[1].want {
		t.Errorf("Errors.Error() = %q", got)
	}
	var fe FieldError
	if !errors.As(error(errs), &fe) || fe.Path != "heartbeat.interval" {
		t.Errorf("errors.As should find the first FieldError, got %+v", fe)
	}
}

func TestSortOrder(t *testing.T) {
	errs := Errors{
		{Path: "c", Msg: "code"},
		{Path: "e2", Source: "env BATON_Z", Msg: "x"},
		{Path: "f9", Source: "f.yaml", Line: 9, Msg: "x"},
		{Path: "e1", Source: "env BATON_A", Msg: "x"},
		{Path: "f0", Source: "f.yaml", Msg: "x"},
		{Path: "f2", Source: "f.yaml", Line: 2, Msg: "x"},
	}
	errs.sort()
	var got []string
	for _, e := range errs {
		got = append(got, e.Path)
	}
	if strings.Join(got, " ") != "f0 f2 f9 e1 e2 c" {
		t.Errorf("order %v", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/bad.yaml", "../../examples/azure-lb-pair/nva-a.yaml", "../../examples/preferred-master/nva-a.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "BATON_NODE_PRIORITY=120")
	}
	f.Add([]byte(minimalYAML), `BATON_PEER_PATHS=[{name: hb, address: "10.9.0.2:5405"}]`)
	f.Add([]byte("a: &a [*a]"), "BATON_X=1")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		c, err := Parse(data, "fuzz.yaml", []string{env})
		if (c == nil) == (err == nil) {
			t.Fatalf("want exactly one of config and error, got %v and %v", c, err)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not a non-empty Errors: %T %v", err, err)
			}
			return
		}
		if errs := c.Validate(); len(errs) != 0 {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", errs)
		}
	})
}
