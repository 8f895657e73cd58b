package hostevents_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/batonha/baton/internal/hostevents"
	"github.com/batonha/baton/internal/hostevents/hosteventstest"
	"github.com/batonha/baton/internal/role"
)

func readDoc(t *testing.T, name string) []byte {
	t.Helper()
	data, err := hosteventstest.Documents.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The fixture serves the documented documents byte for byte (compacted)
// and accepts the documented StartRequests body; without the Metadata
// header or an api-version it refuses, as the service does.
func TestAzureFixtureFollowsTheDocuments(t *testing.T) {
	fx := hosteventstest.NewAzure("nva-a")
	url := fx.Start(t)
	get := func(u string, hdr bool) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if hdr {
			req.Header.Set("Metadata", "true")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, name := range []string{"empty.json", "reboot.json", "freeze.json"} {
		want := readDoc(t, name)
		var doc hostevents.AzureDocument
		if err := json.Unmarshal(want, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fx.SetDocument(doc)
		code, got := get(url+"/metadata/scheduledevents?api-version="+hostevents.AzureAPIVersion, true)
		var compact bytes.Buffer
		_ = json.Compact(&compact, want)
		if code != 200 || !bytes.Equal(got, compact.Bytes()) {
			t.Errorf("%s: served %d %s\nwant %s", name, code, got, compact.Bytes())
		}
	}
	if code, _ := get(url+"/metadata/scheduledevents?api-version="+hostevents.AzureAPIVersion, false); code != 400 {
		t.Errorf("without the Metadata header: %d, want 400", code)
	}
	if code, _ := get(url+"/metadata/scheduledevents", true); code != 400 {
		t.Errorf("without api-version: %d, want 400", code)
	}

	var doc hostevents.AzureDocument
	_ = json.Unmarshal(readDoc(t, "reboot.json"), &doc)
	fx.SetDocument(doc)
	post := func(body []byte) int {
		req, _ := http.NewRequest(http.MethodPost, url+"/metadata/scheduledevents?api-version="+hostevents.AzureAPIVersion, bytes.NewReader(body))
		req.Header.Set("Metadata", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post([]byte(`{"StartRequests":[{"EventId":"00000000-0000-0000-0000-000000000000"}]}`)); code != 400 {
		t.Errorf("unknown EventId: %d, want 400", code)
	}
	if code := post([]byte(`{"Start":1}`)); code != 400 {
		t.Errorf("malformed body: %d, want 400", code)
	}
	if code := post(readDoc(t, "start-requests.json")); code != 200 {
		t.Errorf("documented StartRequests: %d, want 200", code)
	}
	_, got := get(url+"/metadata/scheduledevents?api-version="+hostevents.AzureAPIVersion, true)
	_ = json.Unmarshal(got, &doc)
	if doc.DocumentIncarnation != 2 || doc.Events[0].EventStatus != "Started" || doc.Events[0].NotBefore != "" {
		t.Errorf("after StartRequests: %s", got)
	}

	// And the client's acknowledgement is that documented body.
	src := hostevents.NewAzure(url, "nva-a", http.DefaultClient)
	fx.SetDocument(hostevents.AzureDocument{DocumentIncarnation: 1, Events: []hostevents.AzureEvent{{EventID: "C7061BAC-AFDC-4513-B24B-AA5F13A16123", EventStatus: "Scheduled", Resources: []string{"nva-a"}}}})
	if err := src.Acknowledge(context.Background(), hostevents.Event{ID: "C7061BAC-AFDC-4513-B24B-AA5F13A16123", Ackable: true}); err != nil {
		t.Fatal(err)
	}
	var wantBody, gotBody bytes.Buffer
	_ = json.Compact(&wantBody, readDoc(t, "start-requests.json"))
	b, _ := json.Marshal(hostevents.AzureStartRequests{StartRequests: []hostevents.AzureStartRequest{{EventID: "C7061BAC-AFDC-4513-B24B-AA5F13A16123"}}})
	gotBody.Write(b)
	if !bytes.Equal(wantBody.Bytes(), gotBody.Bytes()) {
		t.Errorf("acknowledgement body %s, want %s", gotBody.Bytes(), wantBody.Bytes())
	}
}

func reboot(id string, vms ...string) hostevents.AzureEvent {
	return hostevents.AzureEvent{EventID: id, EventType: "Reboot", ResourceType: "VirtualMachine", Resources: vms,
		EventStatus: "Scheduled", NotBefore: "Mon, 19 Sep 2016 18:29:47 GMT", EventSource: "Platform", DurationInSeconds: -1}
}

// A reboot of the active with a healthy standby: hand over, enter
// MAINTENANCE, acknowledge; once the event is over, resume.
func TestAzureRebootDrainsAcknowledgesAndResumes(t *testing.T) {
	fx := hosteventstest.NewAzure("nva-a") // the name comes from the compute metadata
	w, n := newWatcher(t, setup{cloud: "azure", endpoint: fx.Start(t), resume: true, stateDir: t.TempDir()}, healthyPair())
	ctx := context.Background()

	w.Poll(ctx)
	fx.Post(reboot("E1", "nva-b")) // the peer's event: nothing to do here
	w.Poll(ctx)
	if c := n.Calls(); len(c) != 0 || len(fx.Acks()) != 0 {
		t.Fatalf("an event of the peer: calls %v acks %v", c, fx.Acks())
	}

	fx.Post(reboot("E2", "nva-a"))
	w.Poll(ctx)
	if c := n.Calls(); !slices.Equal(c, []string{"switchover", "maintenance on"}) {
		t.Fatalf("calls %v, want switchover then maintenance", c)
	}
	if a := fx.Acks(); !slices.Equal(a, []string{"E2"}) {
		t.Fatalf("acks %v, want [E2]", a)
	}
	st := status(w)
	if len(st.Events) != 1 || !st.Events[0].Drained || !st.Events[0].Acknowledged || st.Events[0].Status != "Scheduled" {
		t.Fatalf("status %+v", st)
	}
	w.Poll(ctx) // now Started: nothing more
	if len(n.Calls()) != 2 || len(fx.Acks()) != 1 {
		t.Fatalf("a second poll acted again: %v %v", n.Calls(), fx.Acks())
	}

	fx.Complete("E2")
	w.Poll(ctx)
	if c := n.Calls(); !slices.Equal(c, []string{"switchover", "maintenance on", "maintenance off"}) {
		t.Fatalf("after the event: calls %v, want maintenance off (events.resume)", c)
	}
}

// Without resume the node stays in MAINTENANCE; a restarted watcher does
// not drain again for an event it already handled.
func TestAzureNoResumeAndRestart(t *testing.T) {
	fx := hosteventstest.NewAzure("nva-a")
	url, dir := fx.Start(t), t.TempDir()
	w, n := newWatcher(t, setup{cloud: "azure", endpoint: url, vmName: "NVA-A", stateDir: dir}, healthyPair())
	ctx := context.Background()
	fx.Post(reboot("E1", "nva-a"))
	w.Poll(ctx)
	if len(n.Calls()) != 2 || len(fx.Acks()) != 1 {
		t.Fatalf("calls %v acks %v", n.Calls(), fx.Acks())
	}

	// The node restarted (say baton was upgraded) before the event ran.
	w2, n2 := newWatcher(t, setup{cloud: "azure", endpoint: url, vmName: "nva-a", stateDir: dir}, role.Snapshot{State: role.Standby})
	w2.Poll(ctx)
	if len(n2.Calls()) != 0 || len(fx.Acks()) != 1 {
		t.Fatalf("restarted watcher acted again: calls %v acks %v", n2.Calls(), fx.Acks())
	}
	fx.Complete("E1")
	w.Poll(ctx)
	if c := n.Calls(); len(c) != 2 {
		t.Fatalf("without events.resume the node left maintenance: %v", c)
	}
}

// A peer that is not a healthy standby: no handover and no
// acknowledgement (the platform's deadline runs), said in status; once the
// peer is back, the drain happens.
func TestAzurePeerUnhealthyWaits(t *testing.T) {
	fx := hosteventstest.NewAzure("nva-a")
	snap := healthyPair()
	snap.Peer.Healthy = false
	w, n := newWatcher(t, setup{cloud: "azure", endpoint: fx.Start(t)}, snap)
	ctx := context.Background()
	fx.Post(reboot("E1", "nva-a"))
	w.Poll(ctx)
	w.Poll(ctx)
	if len(n.Calls()) != 0 || len(fx.Acks()) != 0 {
		t.Fatalf("drained with an unhealthy peer: calls %v acks %v", n.Calls(), fx.Acks())
	}
	if st := status(w); len(st.Events) != 1 || st.Events[0].Waiting == "" || st.Events[0].Acknowledged {
		t.Fatalf("status does not say why: %+v", st)
	}
	n.set(healthyPair())
	w.Poll(ctx)
	if len(n.Calls()) != 2 || !slices.Equal(fx.Acks(), []string{"E1"}) {
		t.Fatalf("after the peer healed: calls %v acks %v", n.Calls(), fx.Acks())
	}
	if st := status(w); st.Events[0].Waiting != "" {
		t.Fatalf("still waiting: %+v", st)
	}
}

// A scale-set instance with no peer (bgp active-active): nobody to hand
// over to, so it enters MAINTENANCE at once (withdrawing its announcements
// while the other instances carry the traffic), acknowledges, and
// resumes when the event is over. A paired node in the same state would
// wait (TestAzurePeerUnhealthyWaits).
func TestAzurePeerlessActiveWithdraws(t *testing.T) {
	fx := hosteventstest.NewAzure("nva-a")
	w, n := newWatcher(t, setup{cloud: "azure", endpoint: fx.Start(t), resume: true, peerless: true}, role.Snapshot{State: role.Active})
	ctx := context.Background()
	fx.Post(reboot("E1", "nva-a"))
	w.Poll(ctx)
	if c := n.Calls(); !slices.Equal(c, []string{"maintenance on"}) || !slices.Equal(fx.Acks(), []string{"E1"}) {
		t.Fatalf("calls %v acks %v, want maintenance on (no switchover) and E1 acknowledged", c, fx.Acks())
	}
	if st := status(w); !st.Events[0].Drained || st.Events[0].Waiting != "" {
		t.Fatalf("status %+v", st)
	}
	fx.Complete("E1")
	w.Poll(ctx)
	if c := n.Calls(); !slices.Equal(c, []string{"maintenance on", "maintenance off"}) {
		t.Fatalf("after the event: calls %v, want maintenance off", c)
	}
}

// A freeze of the active drains only when it may outlast the loss
// tolerance (3s here); a freeze of the standby needs nothing.
func TestAzureFreeze(t *testing.T) {
	freeze := func(id string, secs int) hostevents.AzureEvent {
		e := reboot(id, "nva-a")
		e.EventType, e.DurationInSeconds = "Freeze", secs
		return e
	}
	for _, tc := range []struct {
		name  string
		state role.State
		secs  int
		drain bool
	}{
		{"short freeze of the active", role.Active, 2, false},
		{"long freeze of the active", role.Active, 9, true},
		{"freeze of unknown length of the active", role.Active, -1, true},
		{"freeze of the standby", role.Standby, 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := hosteventstest.NewAzure("nva-a")
			snap := healthyPair()
			snap.State = tc.state
			w, n := newWatcher(t, setup{cloud: "azure", endpoint: fx.Start(t)}, snap)
			fx.Post(freeze("F1", tc.secs))
			w.Poll(context.Background())
			drained := len(n.Calls()) > 0
			if drained != tc.drain || (len(fx.Acks()) == 1) != tc.drain {
				t.Fatalf("calls %v acks %v, want drain=%v", n.Calls(), fx.Acks(), tc.drain)
			}
			if st := status(w); !tc.drain && st.Events[0].Ignored == "" {
				t.Fatalf("status does not say why nothing was done: %+v", st)
			}
		})
	}
}

// A standby named by an event enters MAINTENANCE (it must not take over
// while it reboots) and acknowledges.
func TestAzureStandbyEntersMaintenance(t *testing.T) {
	fx := hosteventstest.NewAzure("nva-a")
	snap := healthyPair()
	snap.State, snap.Peer.State = role.Standby, role.Active
	w, n := newWatcher(t, setup{cloud: "azure", endpoint: fx.Start(t)}, snap)
	fx.Post(reboot("E1", "nva-a"))
	w.Poll(context.Background())
	if c := n.Calls(); !slices.Equal(c, []string{"maintenance on"}) || len(fx.Acks()) != 1 {
		t.Fatalf("calls %v acks %v", c, fx.Acks())
	}
}

func TestAzureMetadataDown(t *testing.T) {
	w, n := newWatcher(t, setup{cloud: "azure", endpoint: "http://127.0.0.1:1", vmName: "nva-a"}, healthyPair())
	w.Poll(context.Background())
	if st := status(w); st.LastError == "" || len(n.Calls()) != 0 {
		t.Fatalf("status %+v calls %v", st, n.Calls())
	}
}
