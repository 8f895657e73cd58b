// Package alerts posts baton's events (each transition, and optionally
// path changes, failed actions and sync refusals) to webhooks — generic
// JSON, Slack, Microsoft Teams — and e-mail. Each target has its own
// bounded queue and retries; nothing here can delay a takeover: the
// dispatcher reads the event hub like any other subscriber.
package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/feed"
)

// Alert is one event to send.
type Alert struct {
	ID    string     `json:"id"` // node:seq, the same on every retry
	Node  string     `json:"node"`
	Kind  string     `json:"kind"`
	At    time.Time  `json:"at"`
	Text  string     `json:"text"`
	Event feed.Event `json:"event"`
}

// Stats count one target's deliveries.
type Stats struct {
	Sent, Failed, Dropped, Retries uint64
}

// Dispatcher sends alerts to every target.
type Dispatcher struct {
	cfg     Config
	node    string
	clk     clock.Clock
	log     *slog.Logger
	targets []*target
}

type target struct {
	name string
	send func(ctx context.Context, a Alert) error

	mu    sync.Mutex
	queue []Alert
	wake  chan struct{}
	stats Stats
}

// New reads the targets' secrets and returns a dispatcher.
func New(cfg Config, node string, clk clock.Clock, log *slog.Logger) (*Dispatcher, error) {
	if clk == nil {
		clk = clock.Real{}
	}
	d := &Dispatcher{cfg: cfg, node: node, clk: clk, log: log.With("component", "alerts")}
	hc := &http.Client{Timeout: cfg.Timeout}
	for _, tc := range cfg.Targets {
		t := &target{name: tc.Name, wake: make(chan struct{}, 1)}
		switch tc.Type {
		case "webhook", "slack", "teams":
			u, err := readSecret(tc.URLFile)
			if err != nil {
				return nil, fmt.Errorf("alerts target %s: reading url_file: %w", tc.Name, err)
			}
			if err := checkURL(u); err != nil {
				return nil, fmt.Errorf("alerts target %s: url_file %s: %w", tc.Name, tc.URLFile, err)
			}
			t.send = webhook(hc, u, tc.Type)
		case "smtp":
			pass := ""
			if tc.PasswordFile != "" {
				p, err := readSecret(tc.PasswordFile)
				if err != nil {
					return nil, fmt.Errorf("alerts target %s: reading password_file: %w", tc.Name, err)
				}
				pass = p
			}
			t.send = mail(tc, pass)
		default:
			return nil, fmt.Errorf("alerts target %s: unknown type %q", tc.Name, tc.Type)
		}
		d.targets = append(d.targets, t)
	}
	return d, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Run follows hub and sends until ctx ends.
func (d *Dispatcher) Run(ctx context.Context, hub *feed.Hub) {
	var wg sync.WaitGroup
	for _, t := range d.targets {
		wg.Add(1)
		go func() { defer wg.Done(); d.deliver(ctx, t) }()
	}
	defer wg.Wait()
	var last uint64
	for ctx.Err() == nil {
		sub := hub.Subscribe(d.cfg.Queue, last)
		d.follow(ctx, hub, sub, &last)
		hub.Close(sub)
	}
}

// follow reads one subscription until ctx ends or the hub drops it.
func (d *Dispatcher) follow(ctx context.Context, hub *feed.Hub, sub *feed.Sub, last *uint64) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.C():
			if !ok {
				d.log.Warn("alerts fell behind the event stream; resuming", "after_seq", *last)
				return
			}
			*last = ev.Seq
			if a, ok := d.alert(ev); ok {
				for _, t := range d.targets {
					t.push(a, d.cfg.Queue)
				}
			}
		}
	}
}

// alert turns an event into an alert when the configuration wants it.
func (d *Dispatcher) alert(ev feed.Event) (Alert, bool) {
	kind, text := "", ""
	var m map[string]any
	_ = json.Unmarshal(ev.Data, &m)
	switch ev.Type {
	case feed.TypeTransition:
		kind = EventTransition
		text = fmt.Sprintf("%s: %v → %v (term %v, %v)", ev.Node, m["from"], m["to"], m["term"], m["reason"])
		if det, _ := m["detail"].(string); det != "" {
			text += ": " + det
		}
	case feed.TypePath:
		kind = EventPath
		state := "down"
		if up, _ := m["up"].(bool); up {
			state = "up"
		}
		text = fmt.Sprintf("%s: path %v to %v is %s", ev.Node, m["path"], m["peer"], state)
	case feed.TypeAction:
		if ok, _ := m["ok"].(bool); ok {
			return Alert{}, false
		}
		kind = EventActionFailed
		text = fmt.Sprintf("%s: action %v %v failed (attempt %v): %v", ev.Node, m["action"], m["op"], m["attempts"], m["error"])
	case feed.TypeSyncRefusal:
		kind = EventSyncRefusal
		text = fmt.Sprintf("%s: config sync refused %v: %v", ev.Node, m["key"], m["error"])
	default:
		return Alert{}, false
	}
	if !contains(d.cfg.Events, kind) {
		return Alert{}, false
	}
	return Alert{ID: fmt.Sprintf("%s:%d", ev.Node, ev.Seq), Node: ev.Node, Kind: kind, At: ev.At, Text: text, Event: ev}, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// push queues a, dropping the oldest past max.
func (t *target) push(a Alert, max int) {
	t.mu.Lock()
	if len(t.queue) >= max {
		t.queue = t.queue[1:]
		t.stats.Dropped++
	}
	t.queue = append(t.queue, a)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// deliver sends t's queue in order, retrying each alert with a doubling
// backoff, until ctx ends.
func (d *Dispatcher) deliver(ctx context.Context, t *target) {
	for {
		t.mu.Lock()
		var a Alert
		ok := len(t.queue) > 0
		if ok {
			a = t.queue[0]
			t.queue = t.queue[1:]
		}
		t.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
				continue
			}
		}
		wait := d.cfg.Backoff
		for attempt := 0; ; attempt++ {
			err := t.send(ctx, a)
			if err == nil {
				t.count(func(s *Stats) { s.Sent++ })
				break
			}
			if ctx.Err() != nil {
				return
			}
			if attempt >= d.cfg.Retries {
				t.count(func(s *Stats) { s.Failed++ })
				d.log.Error("alert not delivered", "target", t.name, "id", a.ID, "attempts", attempt+1, "err", err)
				break
			}
			t.count(func(s *Stats) { s.Retries++ })
			d.log.Warn("alert delivery failed; retrying", "target", t.name, "id", a.ID, "attempt", attempt+1, "in", wait, "err", err)
			if clock.Sleep(ctx, d.clk, wait) != nil {
				return
			}
			wait = min(2*wait, time.Minute)
		}
	}
}

func (t *target) count(f func(*Stats)) {
	t.mu.Lock()
	f(&t.stats)
	t.mu.Unlock()
}

// Stats returns each target's counters by name.
func (d *Dispatcher) Stats() map[string]Stats {
	out := map[string]Stats{}
	for _, t := range d.targets {
		t.mu.Lock()
		out[t.name] = t.stats
		t.mu.Unlock()
	}
	return out
}

// webhook posts an alert in the target's format. Errors never carry the
// URL (it holds the hook's secret).
func webhook(hc *http.Client, u, format string) func(context.Context, Alert) error {
	return func(ctx context.Context, a Alert) error {
		var body any
		switch format {
		case "slack":
			body = map[string]string{"text": a.Text}
		case "teams":
			body = map[string]any{"@type": "MessageCard", "@context": "https://schema.org/extensions",
				"summary": a.Text, "title": "baton " + a.Kind, "text": a.Text, "themeColor": color(a)}
		default:
			body = a
		}
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
		if err != nil {
			return errors.New("building the request failed")
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", a.ID)
		resp, err := hc.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("posting: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("posting: the receiver answered %s", resp.Status)
		}
		return nil
	}
}

func color(a Alert) string {
	if strings.Contains(a.Text, "→ ACTIVE") {
		return "2EB67D"
	}
	return "E01E5A"
}

// mail sends an alert by SMTP (STARTTLS when the server offers it).
func mail(tc Target, password string) func(context.Context, Alert) error {
	return func(ctx context.Context, a Alert) error {
		host, _, _ := strings.Cut(tc.Server, ":")
		var auth smtp.Auth
		if tc.Username != "" {
			auth = smtp.PlainAuth("", tc.Username, password, host)
		}
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: baton %s: %s\r\nMessage-ID: <%s@baton>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
			tc.From, strings.Join(tc.To, ", "), a.Kind, a.Text, strings.ReplaceAll(a.ID, ":", "."), a.Text)
		done := make(chan error, 1)
		go func() { done <- smtp.SendMail(tc.Server, auth, tc.From, tc.To, []byte(msg)) }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("sending mail via %s: %w", tc.Server, err)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
