package alerts

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonha/baton/internal/feed"
)

// receiver records what each alert ID received; it fails the first
// failFirst attempts of every alert.
type receiver struct {
	failFirst int
	mu        sync.Mutex
	attempts  map[string]int
	accepted  map[string]int
	bodies    []map[string]any
	got       chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	id := req.Header.Get("Idempotency-Key")
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[id]++
	if r.attempts[id] <= r.failFirst {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	r.accepted[id]++
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	r.bodies = append(r.bodies, m)
	r.got <- struct{}{}
}

func setup(t *testing.T, typ string, failFirst int, events ...string) (*feed.Hub, *receiver, *Dispatcher, func()) {
	t.Helper()
	rcv := &receiver{failFirst: failFirst, attempts: map[string]int{}, accepted: map[string]int{}, got: make(chan struct{}, 16)}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	urlFile := filepath.Join(t.TempDir(), "hook.url")
	if err := os.WriteFile(urlFile, []byte(srv.URL+"/hook/SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	cfg.SetDefaults()
	cfg.Backoff = time.Millisecond
	if len(events) > 0 {
		cfg.Events = events
	}
	cfg.Targets = []Target{{Name: "hook", Type: typ, URLFile: urlFile}}
	var problems []string
	cfg.Check(func(k, m string) { problems = append(problems, k+": "+m) })
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	d, err := New(cfg, "nva-a", nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hub := feed.New("nva-a", nil, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, hub); close(done) }()
	// Publish only once the dispatcher follows the hub.
	deadline := time.Now().Add(5 * time.Second)
	for hub.Stats().Subscribers == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return hub, rcv, d, func() { cancel(); <-done }
}

func wait(t *testing.T, r *receiver, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("the receiver got fewer than %d alerts", n)
		}
	}
}

func TestEachTransitionArrivesExactlyOnceThroughFailures(t *testing.T) {
	hub, rcv, d, stop := setup(t, "webhook", 2)
	hub.Publish(feed.TypeTransition, map[string]any{"from": "STANDBY", "to": "ACTIVE", "term": 2, "reason": "peer_dead"})
	hub.Publish(feed.TypePath, map[string]any{"path": "hb", "up": false}) // not asked for
	hub.Publish(feed.TypeTransition, map[string]any{"from": "ACTIVE", "to": "STANDBY", "term": 3, "reason": "switchover"})
	hub.Publish(feed.TypeTransition, map[string]any{"from": "STANDBY", "to": "ACTIVE", "term": 4, "reason": "peer_gone"})
	wait(t, rcv, 3)
	deadline := time.Now().Add(5 * time.Second)
	for d.Stats()["hook"].Sent < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // the sender counts once the answer is read
	}
	stop()
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.accepted) != 3 {
		t.Fatalf("accepted %v, want 3 alerts", rcv.accepted)
	}
	for id, n := range rcv.accepted {
		if n != 1 || rcv.attempts[id] != 3 {
			t.Errorf("alert %s accepted %d times after %d attempts, want once after 3", id, n, rcv.attempts[id])
		}
	}
	if txt, _ := rcv.bodies[0]["text"].(string); txt != "nva-a: STANDBY → ACTIVE (term 2, peer_dead)" {
		t.Errorf("first alert text %q", txt)
	}
	if st := d.Stats()["hook"]; st.Sent != 3 || st.Retries != 6 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSlackTeamsAndOptionalEvents(t *testing.T) {
	hub, rcv, _, stop := setup(t, "slack", 0, EventTransition, EventActionFailed)
	hub.Publish(feed.TypeAction, map[string]any{"action": "routes", "op": "activate", "ok": true})
	hub.Publish(feed.TypeAction, map[string]any{"action": "routes", "op": "activate", "ok": false, "error": "throttled", "attempts": 1})
	wait(t, rcv, 1)
	stop()
	if txt, _ := rcv.bodies[0]["text"].(string); !strings.Contains(txt, "action routes activate failed") || len(rcv.bodies[0]) != 1 {
		t.Fatalf("slack body %v", rcv.bodies[0])
	}

	hub, rcv, _, stop = setup(t, "teams", 0)
	hub.Publish(feed.TypeTransition, map[string]any{"from": "STANDBY", "to": "ACTIVE", "term": 2, "reason": "peer_dead"})
	wait(t, rcv, 1)
	stop()
	if rcv.bodies[0]["@type"] != "MessageCard" || !strings.Contains(rcv.bodies[0]["text"].(string), "→ ACTIVE") {
		t.Fatalf("teams body %v", rcv.bodies[0])
	}
}

func TestErrorsNeverCarryTheURL(t *testing.T) {
	send := webhook(&http.Client{Timeout: time.Second}, "http://127.0.0.1:1/hook/SECRET", "webhook")
	err := send(context.Background(), Alert{ID: "a:1"})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error %v", err)
	}
}

func TestCheckNamesTheKey(t *testing.T) {
	var cfg Config
	cfg.SetDefaults()
	cfg.Events = []string{"everything"}
	cfg.Targets = []Target{{Name: "m", Type: "smtp", Server: "mail", From: "baton@x"}, {Name: "m", Type: "pager"}}
	var got []string
	cfg.Check(func(k, m string) { got = append(got, k) })
	want := []string{"events[0]", "targets[0].server", "targets[0].to", "targets[1].name", "targets[1].type"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("problems at %v, want %v", got, want)
	}
}

func TestQueueDropsTheOldest(t *testing.T) {
	tg := &target{wake: make(chan struct{}, 1)}
	for i := range 5 {
		tg.push(Alert{ID: string(rune('a' + i))}, 3)
	}
	if len(tg.queue) != 3 || tg.queue[0].ID != "c" || tg.stats.Dropped != 2 {
		t.Fatalf("queue %+v stats %+v", tg.queue, tg.stats)
	}
}
