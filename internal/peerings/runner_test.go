package peerings

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
)

const token = "0123456789abcdef-token"

func TestWebhook(t *testing.T) {
	var n atomic.Int32
	w, err := NewWebhook(token, func() { n.Add(1) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, target, evType, body string, hdr map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		if evType != "" {
			req.Header.Set("aeg-event-type", evType)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rr := httptest.NewRecorder()
		w.ServeHTTP(rr, req)
		return rr
	}
	validation := `[{"id":"1","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","subject":"","data":{"validationCode":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]`
	if rr := do("POST", "/peerings", "SubscriptionValidation", validation, nil); rr.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", rr.Code)
	}
	if rr := do("POST", "/peerings?token=wrong-wrong-wrong", "SubscriptionValidation", validation, nil); rr.Code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", rr.Code)
	}
	rr := do("POST", "/peerings?token="+token, "SubscriptionValidation", validation, nil)
	var got map[string]string
	if rr.Code != 200 || json.Unmarshal(rr.Body.Bytes(), &got) != nil || got["validationResponse"] != "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" {
		t.Fatalf("validation: %d %s", rr.Code, rr.Body)
	}
	if n.Load() != 0 {
		t.Fatal("validation triggered a round")
	}
	write := `[{"id":"2","eventType":"Microsoft.Resources.ResourceWriteSuccess","subject":"/subscriptions/s/resourceGroups/nva/providers/Microsoft.Compute/virtualMachineScaleSets/nva","data":{}}]`
	if rr := do("POST", "/peerings", "Notification", write, map[string]string{"aeg-sas-key": token}); rr.Code != http.StatusAccepted {
		t.Fatalf("notification: %d", rr.Code)
	}
	if rr := do("POST", "/", "", "", map[string]string{"Authorization": "Bearer " + token}); rr.Code != http.StatusAccepted {
		t.Fatalf("plain POST: %d", rr.Code)
	}
	if rr := do("GET", "/?token="+token, "", "", nil); rr.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", rr.Code)
	}
	if rr := do("POST", "/?token="+token, "Notification", "{not json", nil); rr.Code != http.StatusBadRequest {
		t.Fatalf("bad body: %d", rr.Code)
	}
	if n.Load() != 2 {
		t.Fatalf("triggers = %d, want 2", n.Load())
	}
	if _, err := NewWebhook("short", func() {}, nil); err == nil {
		t.Fatal("short token accepted")
	}
}

func FuzzParseEventGrid(f *testing.F) {
	f.Add("SubscriptionValidation", []byte(`[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"x"}}]`))
	f.Add("Notification", []byte(`[{"eventType":"Microsoft.Resources.ResourceWriteSuccess","data":{}}]`))
	f.Add("", []byte(`{"anything":1}`))
	f.Add("", []byte(`[`))
	f.Add("SubscriptionValidation", []byte(`[]`))
	f.Fuzz(func(t *testing.T, evType string, body []byte) {
		code, validation, err := ParseEventGrid(evType, body)
		if err != nil && (validation || code != "") {
			t.Fatalf("error with a result: %q %v %v", code, validation, err)
		}
		if validation && code == "" {
			t.Fatal("validation without a code")
		}
		if !validation && code != "" {
			t.Fatal("code without validation")
		}
	})
}

// countingInv counts inventory reads, i.e. rounds.
type countingInv struct{ n atomic.Int32 }

func (c *countingInv) Instances(context.Context) ([]Instance, error) {
	c.n.Add(1)
	return nil, nil
}

func TestRunnerIntervalTriggerAndLeader(t *testing.T) {
	inv := &countingInv{}
	clk := clock.NewFake(time.Unix(0, 0))
	rounds := make(chan struct{}, 10)
	r := NewRunner(New(inv, nil, Options{Clock: clk}), nil, time.Minute, clk, nil)
	r.OnRound = func([]Plan, error) { rounds <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wait := func(what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if clk.Pending() > 0 { // fire the immediate first round
				clk.Advance(0)
			}
			select {
			case <-rounds:
				return
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no round: %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait("at start")
	r.Trigger()
	wait("on trigger")
	// The interval: a round once a minute has passed.
	deadline := time.Now().Add(5 * time.Second)
	for len(rounds) == 0 {
		clk.Advance(time.Minute)
		if time.Now().After(deadline) {
			t.Fatal("no round on the interval")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if inv.n.Load() < 3 {
		t.Fatalf("rounds = %d", inv.n.Load())
	}

	// Not the leader: the runner asks at start, on a trigger and on the
	// interval, and runs no round at all.
	inv2 := &countingInv{}
	asked := make(chan struct{}, 10)
	r2 := NewRunner(New(inv2, nil, Options{Clock: clk}), follower{asked}, time.Minute, clk, nil)
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- r2.Run(ctx2) }()
	waitAsked := func(what string, poke func()) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			poke()
			select {
			case <-asked:
				return
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("the follower never asked whether it leads: %s", what)
			}
		}
	}
	waitAsked("at start", func() { clk.Advance(0) })
	r2.Trigger()
	waitAsked("on trigger", func() {})
	waitAsked("on the interval", func() { clk.Advance(time.Minute) })
	cancel2()
	<-done
	if inv2.n.Load() != 0 {
		t.Fatalf("a follower ran %d rounds", inv2.n.Load())
	}
}

// follower never leads; it reports each time it is asked.
type follower struct{ asked chan<- struct{} }

func (f follower) Leading(context.Context) bool {
	f.asked <- struct{}{}
	return false
}

func TestConfigCheck(t *testing.T) {
	var c Config
	c.SetDefaults()
	var keys []string
	c.Check(func(k, _ string) { keys = append(keys, k) })
	if strings.Join(keys, ",") != "provider" {
		t.Fatalf("empty section: %v", keys)
	}
	c.Provider = ProviderAWS
	c.AWS.Endpoints = []string{"rse-123", "nope"}
	c.Webhook.Listen = "8080"
	keys = nil
	c.Check(func(k, _ string) { keys = append(keys, k) })
	want := "webhook.listen,webhook.token_file,webhook.tls.cert_file,aws.region,aws.endpoints[0],aws.endpoints[1],aws.auto_scaling_group"
	if strings.Join(keys, ",") != want {
		t.Fatalf("keys = %v\nwant %v", keys, want)
	}
	// Plain HTTP only when asked for.
	c.Webhook.Insecure = true
	keys = nil
	c.Check(func(k, _ string) { keys = append(keys, k) })
	if strings.Contains(strings.Join(keys, ","), "webhook.tls") {
		t.Fatalf("insecure webhook still needs a certificate: %v", keys)
	}
}

func TestPeeringName(t *testing.T) {
	if got := PeeringName("baton-", "10.1.2.5"); got != "baton-10-1-2-5" {
		t.Fatal(got)
	}
}
