package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/batonha/baton/internal/feed"
)

// Events follows GET /v1/events and calls fn for each event (of types,
// all when empty) until ctx ends, fn returns an error or the stream ends.
// A stream the daemon dropped for reading slowly is resumed where it was.
func (c *Client) Events(ctx context.Context, types []string, fn func(feed.Event) error) error {
	hc := *c.hc
	hc.Timeout = 0 // a stream has no end
	var last uint64
	for {
		resumed, err := c.stream(ctx, &hc, types, last, func(ev feed.Event) error {
			last = ev.Seq
			return fn(ev)
		})
		if err != nil || !resumed {
			return err
		}
	}
}

// stream reads one connection's events; resume says the daemon dropped it.
func (c *Client) stream(ctx context.Context, hc *http.Client, types []string, after uint64, fn func(feed.Event) error) (resume bool, err error) {
	path := "/v1/events"
	if len(types) > 0 {
		path += "?types=" + url.QueryEscape(strings.Join(types, ","))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if after > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(after, 10))
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("contacting baton: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var typ string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if typ == "dropped" {
				return true, nil
			}
			if typ != "" && typ != feed.TypeSubscription && data.Len() > 0 {
				var ev feed.Event
				if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
					return false, fmt.Errorf("decoding event: %w", err)
				}
				if err := fn(ev); err != nil {
					return false, err
				}
			}
			typ = ""
			data.Reset()
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data.WriteString(strings.TrimPrefix(line, "data: "))
		}
	}
	if ctx.Err() != nil {
		return false, nil
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("reading events: %w", err)
	}
	return false, fmt.Errorf("the daemon closed the event stream")
}
