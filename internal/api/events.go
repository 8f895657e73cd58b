package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/batonha/baton/internal/feed"
)

// sseKeepalive is how often an idle event stream carries a comment, so
// that proxies and the client notice a dead connection.
const sseKeepalive = 15 * time.Second

// events serves GET /v1/events: the hub's events as Server-Sent Events,
// each one "id: SEQ", "event: TYPE" and "data: " the event's JSON. A
// client resumes with Last-Event-ID; ?types=a,b keeps only those types.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// An event stream outlives any write timeout the server sets.
	_ = rc.SetWriteDeadline(time.Time{})
	var after uint64
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after, _ = strconv.ParseUint(id, 10, 64)
	}
	var only map[string]bool
	if t := r.URL.Query().Get("types"); t != "" {
		only = map[string]bool{}
		for _, typ := range strings.Split(t, ",") {
			only[strings.TrimSpace(typ)] = true
		}
	}
	sub := s.feed.Subscribe(0, after)
	defer s.feed.Close(sub)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The first event says the stream is live (and the last sequence
	// number, for a client that wants to know what it missed).
	hello, _ := json.Marshal(map[string]any{"published": s.feed.Stats().Published})
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", feed.TypeSubscription, hello)
	if err := rc.Flush(); err != nil {
		return
	}
	keep := time.NewTicker(sseKeepalive)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
		case ev, ok := <-sub.C():
			if !ok {
				// Dropped for reading too slowly: say so; the client
				// resumes from the last id it saw.
				fmt.Fprint(w, "event: dropped\ndata: {}\n\n")
				_ = rc.Flush()
				return
			}
			if only != nil && !only[ev.Type] {
				continue
			}
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, b); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
