package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/feed"
)

const testToken = "0123456789abcdef-token"

func newTestServer(t *testing.T, opt Options) (*httptest.Server, *fakeBackend) {
	t.Helper()
	b := &fakeBackend{}
	opt.Token = testToken
	s := &Server{backend: b, log: slog.New(slog.NewTextHandler(io.Discard, nil)), token: opt.Token, feed: opt.Events, ro: opt.ReadOnly}
	ts := httptest.NewServer(s.Handler(true))
	t.Cleanup(ts.Close)
	return ts, b
}

func TestEventsStreamDeliversAndResumes(t *testing.T) {
	hub := feed.New("a", nil, 16)
	ts, _ := newTestServer(t, Options{Events: hub})
	c := NewClient(ts.URL, testToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan feed.Event, 8)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Events(ctx, []string{feed.TypeTransition}, func(ev feed.Event) error { got <- ev; return nil })
	}()
	// Publish until the subscriber is there (the first event may be lost
	// to a subscriber that is not connected yet: it asked for none before).
	deadline := time.Now().Add(5 * time.Second)
	for hub.Stats().Subscribers == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	hub.Publish(feed.TypePath, map[string]any{"path": "hb"}) // filtered out
	hub.Publish(feed.TypeTransition, Transition{From: "STANDBY", To: "ACTIVE", Term: 7})
	select {
	case ev := <-got:
		if ev.Type != feed.TypeTransition || !strings.Contains(string(ev.Data), `"term":7`) {
			t.Fatalf("event %+v %s", ev, ev.Data)
		}
	case <-ctx.Done():
		t.Fatal("no transition arrived")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Events after cancel: %v", err)
	}

	// Last-Event-ID replays what was missed.
	req, _ := http.NewRequest("GET", ts.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Last-Event-ID", "1")
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	resp, err := http.DefaultClient.Do(req.WithContext(rctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	var body strings.Builder
	for !strings.Contains(body.String(), "id: 2\n") {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream ended before the replayed event: %v\n%s", err, body.String())
		}
	}
	if strings.Contains(body.String(), "id: 1\n") {
		t.Fatalf("event 1 replayed although the client had it:\n%s", body.String())
	}
}

func TestEventsNeedTheToken(t *testing.T) {
	ts, _ := newTestServer(t, Options{Events: feed.New("a", nil, 4)})
	resp, err := http.Get(ts.URL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("events without token: %s", resp.Status)
	}
}

func TestReadOnlyRefusesCommands(t *testing.T) {
	ts, b := newTestServer(t, Options{ReadOnly: true})
	_, err := NewClient(ts.URL, testToken).Switchover(context.Background())
	if err == nil || !strings.Contains(err.Error(), "read-only") || b.switchs != 0 {
		t.Fatalf("switchover on a read-only API: %v (ran %d)", err, b.switchs)
	}
	if _, err := NewClient(ts.URL, testToken).Status(context.Background()); err != nil {
		t.Fatalf("status on a read-only API: %v", err)
	}
}

func TestLoginCookieAuthorisesThePageAndCommandsNeedTheHeader(t *testing.T) {
	ts, b := newTestServer(t, Options{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	req, _ := http.NewRequest("GET", ts.URL+"/ui/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("page without token: %s to %q, want the login form", resp.Status, resp.Header.Get("Location"))
	}

	resp, err = noRedirect.PostForm(ts.URL+"/ui/login", url.Values{"token": {"wrong-token-wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) != 0 || !strings.Contains(resp.Header.Get("Location"), "failed") {
		t.Fatalf("a wrong token set a cookie or did not say it failed: %v %q", resp.Cookies(), resp.Header.Get("Location"))
	}
	resp, err = noRedirect.PostForm(ts.URL+"/ui/login", url.Values{"token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie %+v", cookies)
	}

	do := func(method, path string, header bool) int {
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		req.AddCookie(cookies[0])
		if header {
			req.Header.Set(uiHeader, "1")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do("GET", "/v1/status", false); code != http.StatusOK {
		t.Fatalf("status with the cookie: %d", code)
	}
	if code := do("POST", "/v1/switchover", false); code != http.StatusUnauthorized || b.switchs != 0 {
		t.Fatalf("a cookie-only POST (what a cross-site form sends) answered %d", code)
	}
	if code := do("POST", "/v1/switchover", true); code != http.StatusOK || b.switchs != 1 {
		t.Fatalf("POST with cookie and header answered %d", code)
	}
}
