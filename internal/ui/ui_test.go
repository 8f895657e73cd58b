package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
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
