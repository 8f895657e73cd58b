package hostevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// AWS reads spot interruptions, rebalance recommendations and scheduled
// maintenance from the EC2 instance metadata service, IMDSv2 only. The
// session token is cached until shortly before it expires.
type AWS struct {
	base   string
	client *http.Client
	clk    clock.Clock
	ttl    time.Duration

	mu      sync.Mutex
	token   string
	expires time.Time
	fetched int // tokens fetched, for tests and status
}

// tokenTTL is what baton asks for: IMDSv2's maximum, six hours.
const tokenTTL = 6 * time.Hour

// NewAWS returns a source for the metadata service at base.
func NewAWS(base string, client *http.Client, clk clock.Clock) *AWS {
	return &AWS{base: strings.TrimSuffix(base, "/"), client: client, clk: clk, ttl: tokenTTL}
}

const (
	awsSpotPath      = "/latest/meta-data/spot/instance-action"
	awsRebalancePath = "/latest/meta-data/events/recommendations/rebalance"
	awsScheduledPath = "/latest/meta-data/events/maintenance/scheduled"
	awsTimeLayout    = "2 Jan 2006 15:04:05 GMT"
)

var errNotFound = errors.New("not found")

// sessionToken returns the cached token or fetches a new one.
func (a *AWS) sessionToken(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clk.Now()
	if a.token != "" && now.Before(a.expires) {
		return a.token, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.base+"/latest/api/token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(int(a.ttl.Seconds())))
	resp, err := a.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("getting an IMDSv2 session token: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("getting an IMDSv2 session token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("getting an IMDSv2 session token: %s", resp.Status)
	}
	ttl := a.ttl
	if s, err := strconv.Atoi(resp.Header.Get("X-aws-ec2-metadata-token-ttl-seconds")); err == nil && s > 0 {
		ttl = time.Duration(s) * time.Second
	}
	a.token = strings.TrimSpace(string(data))
	// Renew a little early: a token that expires in flight is refused.
	a.expires = now.Add(ttl - ttl/10)
	a.fetched++
	return a.token, nil
}

func (a *AWS) dropToken(tok string) {
	a.mu.Lock()
	if a.token == tok {
		a.token = ""
	}
	a.mu.Unlock()
}

// TokensFetched says how many session tokens were fetched.
func (a *AWS) TokensFetched() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fetched
}

// get reads one metadata path; a refused token is renewed once.
func (a *AWS) get(ctx context.Context, path string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		tok, err := a.sessionToken(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-aws-ec2-metadata-token", tok)
		resp, err := a.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return data, nil
		case http.StatusNotFound:
			return nil, errNotFound
		case http.StatusUnauthorized:
			a.dropToken(tok)
			if attempt == 0 {
				continue
			}
		}
		return nil, fmt.Errorf("reading %s: %s", path, resp.Status)
	}
}

// Events implements Source.
func (a *AWS) Events(ctx context.Context) ([]Event, error) {
	var out []Event
	data, err := a.get(ctx, awsSpotPath)
	switch {
	case err == nil:
		var ia struct {
			Action string `json:"action"`
			Time   string `json:"time"`
		}
		if err := json.Unmarshal(data, &ia); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", awsSpotPath, err)
		}
		// An instance has one notice at a time, and its time may move:
		// the path and the action name it.
		ev := Event{ID: "spot-" + ia.Action, Kind: KindSpot, Status: ia.Action}
		ev.NotBefore, _ = time.Parse(time.RFC3339, ia.Time)
		out = append(out, ev)
	case !errors.Is(err, errNotFound):
		return nil, err
	}

	data, err = a.get(ctx, awsRebalancePath)
	switch {
	case err == nil:
		var rb struct {
			NoticeTime string `json:"noticeTime"`
		}
		if err := json.Unmarshal(data, &rb); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", awsRebalancePath, err)
		}
		ev := Event{ID: "rebalance", Kind: KindRebalance}
		ev.NotBefore, _ = time.Parse(time.RFC3339, rb.NoticeTime)
		out = append(out, ev)
	case !errors.Is(err, errNotFound):
		return nil, err
	}

	data, err = a.get(ctx, awsScheduledPath)
	switch {
	case err == nil:
		var sched []struct {
			Code      string `json:"Code"`
			EventID   string `json:"EventId"`
			State     string `json:"State"`
			NotBefore string `json:"NotBefore"`
		}
		if err := json.Unmarshal(data, &sched); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", awsScheduledPath, err)
		}
		for _, s := range sched {
			// completed and canceled events stay listed for a while.
			if s.State != "active" || s.EventID == "" {
				continue
			}
			ev := Event{ID: s.EventID, Kind: s.Code, Status: s.State}
			ev.NotBefore, _ = time.Parse(awsTimeLayout, s.NotBefore)
			out = append(out, ev)
		}
	case !errors.Is(err, errNotFound):
		return nil, err
	}
	return out, nil
}

// Acknowledge implements Source: EC2 has no early start.
func (a *AWS) Acknowledge(context.Context, Event) error { return nil }
