// Package hosteventstest holds a fixture of Azure's Scheduled Events
// service, for tests and benchmarks. It follows the documented protocol:
// GET and POST on /metadata/scheduledevents need the "Metadata: true"
// header and an api-version (400 otherwise), the document lists events
// with their DocumentIncarnation bumped on every change, and a POST of
// StartRequests starts the named events (EventStatus Started, NotBefore
// empty); an unknown EventId or a malformed body is a 400.
package hosteventstest

import (
	"embed"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/batonha/baton/internal/hostevents"
)

// Documents are the documented examples this fixture is checked against.
//
//go:embed testdata/*.json
var Documents embed.FS

// Azure is a Scheduled Events service for one availability set.
type Azure struct {
	mu     sync.Mutex
	doc    hostevents.AzureDocument
	vmName string
	acks   []string
}

// NewAzure returns the fixture; vmName is what the compute metadata
// reports for the VM that asks.
func NewAzure(vmName string) *Azure {
	return &Azure{vmName: vmName, doc: hostevents.AzureDocument{Events: []hostevents.AzureEvent{}}}
}

// Start serves the fixture on loopback until the test ends.
func (a *Azure) Start(t testing.TB) string {
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Post adds an event (the platform schedules it).
func (a *Azure) Post(ev hostevents.AzureEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.doc.Events = append(a.doc.Events, ev)
	a.doc.DocumentIncarnation++
}

// Complete removes an event (the platform carried it out).
func (a *Azure) Complete(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.doc.Events = slices.DeleteFunc(a.doc.Events, func(e hostevents.AzureEvent) bool { return e.EventID == id })
	a.doc.DocumentIncarnation++
}

// SetDocument replaces the whole document.
func (a *Azure) SetDocument(doc hostevents.AzureDocument) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.doc = doc
}

// Acks lists the event IDs acknowledged, in order.
func (a *Azure) Acks() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.acks)
}

func badRequest(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (a *Azure) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata") != "true" {
		badRequest(w, "Bad request. Required metadata header not specified")
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		badRequest(w, "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds")
		return
	}
	switch {
	case r.URL.Path == "/metadata/instance/compute/name" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, a.vmName)
	case r.URL.Path == "/metadata/scheduledevents" && r.Method == http.MethodGet:
		a.mu.Lock()
		data, err := json.Marshal(a.doc)
		a.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(data)
	case r.URL.Path == "/metadata/scheduledevents" && r.Method == http.MethodPost:
		var req hostevents.AzureStartRequests
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || len(req.StartRequests) == 0 {
			badRequest(w, "Bad request. The request body is not a list of StartRequests")
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, s := range req.StartRequests {
			i := slices.IndexFunc(a.doc.Events, func(e hostevents.AzureEvent) bool { return strings.EqualFold(e.EventID, s.EventID) })
			if i < 0 {
				badRequest(w, "Bad request. Unknown EventId "+s.EventID)
				return
			}
		}
		for _, s := range req.StartRequests {
			i := slices.IndexFunc(a.doc.Events, func(e hostevents.AzureEvent) bool { return strings.EqualFold(e.EventID, s.EventID) })
			a.doc.Events[i].EventStatus, a.doc.Events[i].NotBefore = "Started", ""
			a.acks = append(a.acks, s.EventID)
		}
		a.doc.DocumentIncarnation++
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}
