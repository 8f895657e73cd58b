package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/api"
)

func TestExposition(t *testing.T) {
	st := api.Status{Role: "ACTIVE", Term: 7, Healthy: true,
		Peer:  api.PeerStatus{Name: "b", Alive: true, Paths: []api.Path{{Name: "hb", Kind: "udp", Up: true, RTTMillis: 0.5, Sent: 3}}, Drops: map[string]uint64{"bad_mac": 2}},
		Probe: &api.ProbeStatus{Count200: 5, State: "connected"}, HooksDropped: 4}
	m := New(func() api.Status { return st })
	m.Transition("STANDBY", "ACTIVE", "peer_lost")
	m.Step("activate", "probe", 3*time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`baton_role{role="ACTIVE"} 1`,
		`baton_role{role="STANDBY"} 0`,
		`baton_term 7`,
		`baton_transitions_total{from="STANDBY",reason="peer_lost",to="ACTIVE"} 1`,
		`baton_heartbeat_path_up{kind="udp",path="hb"} 1`,
		`baton_heartbeat_dropped_total{reason="bad_mac"} 2`,
		`baton_probe_requests_total{code="200"} 5`,
		`baton_takeover_seconds_count{action="probe",op="activate"} 1`,
		`baton_hooks_dropped_total 4`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %q", want)
		}
	}
}

// Each listener's drop count is read at scrape time, by name.
func TestListenerDrops(t *testing.T) {
	m := New(func() api.Status { return api.Status{} })
	var n uint64 = 3
	m.CountDrops("api", func() uint64 { return n })
	m.CountDrops("link", func() uint64 { return 0 })
	n = 7
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`baton_listener_dropped_total{listener="api"} 7`, `baton_listener_dropped_total{listener="link"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q", want)
		}
	}
}
