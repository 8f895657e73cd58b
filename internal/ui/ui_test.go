package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/api"
)

func testStatus(now time.Time) api.Status {
	return api.Status{
		Node: "nva-a", Role: "ACTIVE", Term: 4, Reason: "peer_dead", Since: now.Add(-90 * time.Second), Healthy: true,
		Peer: api.PeerStatus{Name: "nva-b", Alive: false, Drops: map[string]uint64{"bad_mac": 3},
			Paths: []api.Path{
				{Name: "front", Kind: "udp", Up: true, RTTMillis: 0.21, RTTHistory: []float64{0.2, 0.3, -1, 0.25}},
				{Name: "hb", Kind: "udp", Up: false, LastError: "no route to host"},
			}},
		Probe: &api.ProbeStatus{Mode: "http", Listen: ":8444", Answering: 200, State: "connected", Count200: 12},
		Transitions: []api.Transition{
			{At: now.Add(-time.Hour), From: "INIT", To: "STANDBY", Reason: "peer_active", Term: 3},
			{At: now.Add(-90 * time.Second), From: "STANDBY", To: "ACTIVE", Reason: "peer_dead", Term: 4, TotalMs: 42,
				Steps: []api.Step{
					{Action: "vip", Op: "activate", OK: true, Ms: 2, DoneAtMs: 2},
					{Action: "routes", Op: "activate", OK: false, Error: "rtb-1: throttled", Attempts: 2, Ms: 30, DoneAtMs: 32},
					{Action: "probe", Op: "activate", OK: true, Ms: 0.1, DoneAtMs: 42},
				}},
		},
		Subsystems: map[string]any{"sessions": map[string]any{"held": 1200, "lag_ms": 1.5, "connected": true}},
	}
}

func serve(t *testing.T, opt Options) *httptest.Server {
	t.Helper()
	p, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

func TestPageRendersTheStateWithoutJavaScript(t *testing.T) {
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	ts := serve(t, Options{Status: func() api.Status { return testStatus(now) }, Now: func() time.Time { return now }})
	page := get(t, ts.URL+"/ui/")
	for _, want := range []string{
		`data-role="ACTIVE"`, `data-role="UNREACHABLE"`, "peer_dead", "(1m30s ago)",
		`data-path="front" data-up="true"`, `data-path="hb" data-up="false"`, "no route to host", "bad_mac 3",
		"<polyline", `class="down"`, // the sparkline and its down sample
		`data-term="4" data-to="ACTIVE" data-steps="3"`, "retry ×2", "rtb-1: throttled", "42.0 ms",
		`id="sub-sessions"`, "lag_ms", `data-cmd="/v1/switchover"`, "/ui/static/baton.js",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The newest transition comes first.
	if strings.Index(page, `data-term="4" data-to`) > strings.Index(page, `data-term="3" data-to`) {
		t.Error("timeline is not newest first")
	}
	frag := get(t, ts.URL+"/ui/fragment")
	if strings.Contains(frag, "<html") || !strings.Contains(frag, `id="timeline"`) {
		t.Error("the fragment must be the live part only")
	}
	for _, f := range []string{"baton.css", "baton.js"} {
		if get(t, ts.URL+"/ui/static/"+f) == "" {
			t.Errorf("static %s is empty", f)
		}
	}
}

func TestReadOnlyPageHasNoCommands(t *testing.T) {
	now := time.Now()
	ts := serve(t, Options{Status: func() api.Status { return testStatus(now) }, ReadOnly: true})
	page := get(t, ts.URL+"/ui/")
	if strings.Contains(page, "data-cmd=") || !strings.Contains(page, "read-only") {
		t.Fatal("a read-only page must offer no commands and say why")
	}
}

func TestWaterfallStartsAtTheDetection(t *testing.T) {
	tr := testStatus(time.Now()).Transitions[1]
	tr.DetectedMs = 58 // 58 ms of silence, then the 42 ms run: 100 ms
	e := waterfall(tr)
	if e.DetectWidth < 57.9 || e.DetectWidth > 58.1 {
		t.Fatalf("detection bar %v%%, want 58%%", e.DetectWidth)
	}
	r := e.Bars[1] // 30 ms ending at 32 ms after the decision
	if r.Left < 59.9 || r.Left > 60.1 || r.Width < 29.9 || r.Width > 30.1 {
		t.Fatalf("routes bar %+v", r)
	}
	ts := serve(t, Options{Status: func() api.Status {
		st := testStatus(time.Now())
		st.Transitions[1].DetectedMs = 58
		return st
	}})
	if page := get(t, ts.URL+"/ui/"); !strings.Contains(page, "58.0 ms <span class=\"muted\">before the decision") {
		t.Fatal("the page does not show the detection time")
	}
}

func TestWaterfallPlacesStepsInTheRun(t *testing.T) {
	e := waterfall(testStatus(time.Now()).Transitions[1])
	if !e.Takeover || !e.Failed || len(e.Bars) != 3 {
		t.Fatalf("entry %+v", e)
	}
	r := e.Bars[1] // 30 ms ending at 32 ms of 42
	if r.Left < 4.7 || r.Left > 4.8 || r.Width < 71.4 || r.Width > 71.5 || !r.Retried {
		t.Fatalf("routes bar %+v", r)
	}
	for _, b := range e.Bars {
		if b.Left < 0 || b.Left+b.Width > 100.001 {
			t.Fatalf("bar outside the run: %+v", b)
		}
	}
}

// withParts gives the routes step of the takeover two route tables, one
// retried, one failed, and the vip step two addresses.
func withParts(st api.Status) api.Status {
	tr := &st.Transitions[1]
	tr.Steps[0].Parts = []api.StepPart{
		{Target: "10.0.0.5/24 on eth0", OK: true, Attempts: 1, Ms: 1, DoneAtMs: 1},
		{Target: "10.0.0.6/24 on eth0", OK: true, Attempts: 1, Ms: 2, DoneAtMs: 2},
	}
	tr.Steps[1].Parts = []api.StepPart{
		{Target: "rtb-1 (2 routes)", OK: true, Attempts: 3, Ms: 28, DoneAtMs: 30},
		{Target: "rtb-2 (1 route)", OK: false, Error: "rtb-2: UnauthorizedOperation", Attempts: 1, Ms: 30, DoneAtMs: 32},
	}
	return st
}

func TestWaterfallShowsEachTableAndAddress(t *testing.T) {
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	st := withParts(testStatus(now))
	e := waterfall(st.Transitions[1])
	vip, routes := e.Bars[0], e.Bars[1]
	if len(vip.Parts) != 2 || len(routes.Parts) != 2 || !routes.Retried || !e.Retried {
		t.Fatalf("bars %+v", e.Bars)
	}
	// rtb-1: 28 ms ending at 30 ms of 42.
	if p := routes.Parts[0]; p.Left < 4.7 || p.Left > 4.8 || p.Width < 66.6 || p.Width > 66.7 || !p.Retried {
		t.Fatalf("rtb-1 bar %+v", p)
	}
	// One part that went well is not worth a row.
	one := st.Transitions[1]
	one.Steps = []api.Step{{Action: "routes", Op: "activate", OK: true, Ms: 3, DoneAtMs: 3,
		Parts: []api.StepPart{{Target: "rtb-1 (1 route)", OK: true, Attempts: 1, Ms: 3, DoneAtMs: 3}}}}
	if b := waterfall(one).Bars[0]; len(b.Parts) != 0 || b.Retried {
		t.Fatalf("a single plain part must not be shown: %+v", b)
	}
	ts := serve(t, Options{Status: func() api.Status { return st }, Now: func() time.Time { return now }})
	page := get(t, ts.URL+"/ui/")
	for _, want := range []string{
		`data-action="routes" data-ok="false" data-parts="2"`,
		`data-target="rtb-1 (2 routes)" data-ok="true" data-attempts="3"`, "3 calls",
		`data-target="rtb-2 (1 route)" data-ok="false"`, "rtb-2: UnauthorizedOperation",
		`data-target="10.0.0.6/24 on eth0" data-ok="true"`,
		`class="tr takeover failed retried"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestPageShowsThePeersOwnView(t *testing.T) {
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	peer := api.Status{Node: "nva-b", Role: "STANDBY", Term: 4, Reason: "peer_active", Since: now.Add(-80 * time.Second),
		Peer: api.PeerStatus{Name: "nva-a", Paths: []api.Path{{Name: "front", Kind: "udp", Up: true, RTTMillis: 0.4, RTTHistory: []float64{0.4}}}},
		Transitions: []api.Transition{{At: now.Add(-80 * time.Second), From: "ACTIVE", To: "STANDBY", Reason: "peer_active", Term: 4,
			Steps: []api.Step{{Action: "probe", Op: "deactivate", OK: true, Ms: 0.2, DoneAtMs: 0.2}}}}}
	var fail error
	fetched := now.Add(-time.Second)
	ts := serve(t, Options{Status: func() api.Status { return testStatus(now) }, Now: func() time.Time { return now },
		Peer: func(ctx context.Context) (api.Status, time.Time, error) { return peer, fetched, fail }})
	page := get(t, ts.URL+"/ui/")
	for _, want := range []string{
		`id="peer-view"`, `data-fetched="true"`, "The peer's view · nva-b", `data-role="STANDBY"`,
		`id="peer-paths-table"`, `id="peer-timeline-list"`, `data-term="4" data-to="STANDBY" data-steps="1"`,
		"peer_active",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The link fails: the last view stays, marked with the error.
	fail = errors.New("fetching the peer's status: dialing peer link 10.0.0.2:5407: connection refused")
	page = get(t, ts.URL+"/ui/fragment")
	if !strings.Contains(page, "connection refused") || !strings.Contains(page, "showing what it said at 02:59:59.000") || !strings.Contains(page, `id="peer-timeline-list"`) {
		t.Error("a failed fetch must show the error and the last view")
	}
	// Never fetched: only the reason.
	fetched, fail = time.Time{}, errors.New("the peer link is not configured (link section): the peer's own view needs it")
	page = get(t, ts.URL+"/ui/")
	if !strings.Contains(page, `data-fetched="false"`) || !strings.Contains(page, "link section") || strings.Contains(page, `id="peer-timeline-list"`) {
		t.Error("without a view the section says why and shows nothing else")
	}
	// Without a Peer function the section is left out.
	ts2 := serve(t, Options{Status: func() api.Status { return testStatus(now) }})
	if strings.Contains(get(t, ts2.URL+"/ui/"), `id="peer-view"`) {
		t.Error("no Peer function, no peer's view")
	}
}

// TestPageHasTextAlternatives checks the server-rendered page for the
// basics a screen reader and a keyboard need: every graphic is either
// decoration (aria-hidden) or labelled, every button has a name, the
// document has a language and a skip link, tables have header cells.
func TestPageHasTextAlternatives(t *testing.T) {
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	ts := serve(t, Options{Status: func() api.Status { return withParts(testStatus(now)) }, Now: func() time.Time { return now }})
	page := get(t, ts.URL+"/ui/")
	svg := regexp.MustCompile(`<svg[^>]*>`)
	for _, tag := range svg.FindAllString(page, -1) {
		if !strings.Contains(tag, `aria-hidden="true"`) && !(strings.Contains(tag, `role="img"`) && strings.Contains(tag, "aria-label=")) {
			t.Errorf("graphic without a text alternative: %s", tag)
		}
	}
	button := regexp.MustCompile(`(?s)<button([^>]*)>(.*?)</button>`)
	tags := regexp.MustCompile(`<[^>]*>`)
	for _, m := range button.FindAllStringSubmatch(page, -1) {
		text := strings.TrimSpace(tags.ReplaceAllString(m[2], ""))
		if strings.Contains(m[2], `aria-hidden="true"`) && !strings.Contains(m[1], "aria-label=") {
			text = ""
		}
		if text == "" && !strings.Contains(m[1], "aria-label=") {
			t.Errorf("button without a name: %s", m[0])
		}
	}
	for _, want := range []string{`<html lang="en">`, `class="skip" href="#timeline"`, `<th scope="col">path</th>`, `<th scope="row">`, `role="status"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestSubsystemListsAreCounted(t *testing.T) {
	got := fields("cloud", map[string]any{"cloud": "aws", "routes": []any{1, 2}, "owned_routes": []any{1}, "limits": map[string]any{"x": 1}})
	want := []kv{{"cloud", "aws"}, {"owned_routes", "1"}, {"routes", "2"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
}
