package peerings

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/httpserve"
)

// Leader decides whether this instance may write. Run the reconciler on
// every appliance with a shared lease, or on one with Single.
type Leader interface {
	// Leading reports whether this instance holds the lease now.
	Leading(ctx context.Context) bool
}

// Single is the Leader of a reconciler that runs in one place only.
type Single struct{}

// Leading always holds.
func (Single) Leading(context.Context) bool { return true }

// Runner runs rounds on a poll interval and on triggers.
type Runner struct {
	rec      *Reconciler
	leader   Leader
	interval time.Duration
	clk      clock.Clock
	log      *slog.Logger
	trigger  chan struct{}
	// OnRound, if set, is told about every finished round (tests, CLI).
	OnRound func(plans []Plan, err error)
	// OnSkip, if set, is told about every round skipped because another
	// instance leads.
	OnSkip func()
}

// NewRunner returns a runner of rec every interval.
func NewRunner(rec *Reconciler, leader Leader, interval time.Duration, clk clock.Clock, log *slog.Logger) *Runner {
	if leader == nil {
		leader = Single{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{rec: rec, leader: leader, interval: interval, clk: clk, log: log.With("component", "peerings"),
		trigger: make(chan struct{}, 1)}
}

// Trigger asks for a round soon; triggers that arrive during a round
// coalesce into one more round.
func (r *Runner) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run runs a round at once, then on every tick and trigger, until ctx
// ends.
func (r *Runner) Run(ctx context.Context) error {
	t := r.clk.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		case <-r.trigger:
		}
		t.Stop()
		if r.leader.Leading(ctx) {
			plans, err := r.rec.Round(ctx)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("reconciliation round had errors", "err", err)
			}
			if r.OnRound != nil {
				r.OnRound(plans, err)
			}
		} else {
			r.log.Debug("not the leader: skipping round")
			if r.OnSkip != nil {
				r.OnSkip()
			}
		}
		t.Reset(r.interval)
	}
}

// Webhook is the HTTP trigger: it accepts Azure Event Grid deliveries
// (answering the subscription-validation handshake) and any POST, both
// carrying the shared token as ?token=, the aeg-sas-key header or an
// Authorization: Bearer header.
type Webhook struct {
	token   string
	trigger func()
	log     *slog.Logger
}

// NewWebhook returns the handler; trigger is called for every accepted
// event delivery.
func NewWebhook(token string, trigger func(), log *slog.Logger) (*Webhook, error) {
	if len(token) < 16 {
		return nil, errors.New("webhook token is shorter than 16 characters")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Webhook{token: token, trigger: trigger, log: log.With("component", "peerings")}, nil
}

func (w *Webhook) authorized(r *http.Request) bool {
	got := r.URL.Query().Get("token")
	if got == "" {
		got = r.Header.Get("aeg-sas-key")
	}
	if got == "" {
		got, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(w.token)) == 1
}

// gridEvent is the part of an Event Grid event the webhook reads.
type gridEvent struct {
	EventType string `json:"eventType"`
	Subject   string `json:"subject"`
	Data      struct {
		ValidationCode string `json:"validationCode"`
	} `json:"data"`
}

// ServeHTTP implements http.Handler.
func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", "POST")
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if !w.authorized(r) {
		http.Error(rw, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(rw, "reading body", http.StatusBadRequest)
		return
	}
	code, isValidation, err := ParseEventGrid(r.Header.Get("aeg-event-type"), body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	if isValidation {
		w.log.Info("answering Event Grid subscription validation")
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(map[string]string{"validationResponse": code})
		return
	}
	w.trigger()
	rw.WriteHeader(http.StatusAccepted)
}

const validationEvent = "Microsoft.EventGrid.SubscriptionValidationEvent"

// ParseEventGrid reads a webhook body. An Event Grid validation handshake
// (header aeg-event-type SubscriptionValidation, or a validation event in
// the array) returns its code; anything else, including an empty body or
// a non-Event-Grid JSON body, is an ordinary trigger. A body claiming to
// be an Event Grid delivery that does not parse is an error.
func ParseEventGrid(eventType string, body []byte) (code string, validation bool, err error) {
	trimmed := strings.TrimSpace(string(body))
	if eventType == "" && !strings.HasPrefix(trimmed, "[") {
		return "", false, nil
	}
	var evs []gridEvent
	if err := json.Unmarshal(body, &evs); err != nil {
		return "", false, fmt.Errorf("parsing Event Grid events: %w", err)
	}
	for _, ev := range evs {
		if ev.EventType == validationEvent || eventType == "SubscriptionValidation" {
			if ev.Data.ValidationCode == "" {
				return "", false, errors.New("subscription validation event without a validation code")
			}
			return ev.Data.ValidationCode, true, nil
		}
	}
	if eventType == "SubscriptionValidation" {
		return "", false, errors.New("subscription validation without events")
	}
	return "", false, nil
}

// ServeWebhook serves h on the webhook's listen address until ctx ends:
// HTTPS with its certificate unless Insecure, with baton's listener limits.
func ServeWebhook(ctx context.Context, c WebhookConfig, h http.Handler) error {
	l, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("binding peerings webhook %s: %w", c.Listen, err)
	}
	var ln net.Listener = httpserve.Limit(l, 0)
	if !c.Insecure {
		if ln, err = httpserve.TLS(ln, c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			l.Close()
			return fmt.Errorf("peerings webhook %s: %w", c.Listen, err)
		}
	}
	srv := httpserve.New(h)
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving peerings webhook: %w", err)
	}
	return nil
}
