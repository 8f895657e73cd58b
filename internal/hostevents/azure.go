package hostevents

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// AzureAPIVersion is the Scheduled Events API version baton speaks.
const AzureAPIVersion = "2020-07-01"

// Azure reads Scheduled Events from the Azure Instance Metadata Service.
type Azure struct {
	base   string
	client *http.Client

	mu     sync.Mutex
	vmName string // from config, or learned from the compute metadata
}

// NewAzure returns a source for the metadata service at base; vmName may
// be empty (it is then read from the compute metadata).
func NewAzure(base, vmName string, client *http.Client) *Azure {
	return &Azure{base: strings.TrimSuffix(base, "/"), client: client, vmName: vmName}
}

// AzureDocument is the Scheduled Events document.
type AzureDocument struct {
	DocumentIncarnation int          `json:"DocumentIncarnation"`
	Events              []AzureEvent `json:"Events"`
}

// AzureEvent is one event of the document.
type AzureEvent struct {
	EventID           string   `json:"EventId"`
	EventType         string   `json:"EventType"`
	ResourceType      string   `json:"ResourceType"`
	Resources         []string `json:"Resources"`
	EventStatus       string   `json:"EventStatus"`
	NotBefore         string   `json:"NotBefore"` // RFC 1123, empty once Started
	Description       string   `json:"Description"`
	EventSource       string   `json:"EventSource"`
	DurationInSeconds int      `json:"DurationInSeconds"` // -1 when unknown
}

// AzureStartRequests is the body of the acknowledgement.
type AzureStartRequests struct {
	StartRequests []AzureStartRequest `json:"StartRequests"`
}

// AzureStartRequest names one event to start.
type AzureStartRequest struct {
	EventID string `json:"EventId"`
}

func (a *Azure) eventsURL() string {
	return a.base + "/metadata/scheduledevents?api-version=" + AzureAPIVersion
}

func (a *Azure) do(ctx context.Context, method, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata", "true")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	return data, nil
}

// name returns this VM's name, reading it from the compute metadata the
// first time when the configuration did not give it.
func (a *Azure) name(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.vmName != "" {
		return a.vmName, nil
	}
	data, err := a.do(ctx, http.MethodGet, a.base+"/metadata/instance/compute/name?api-version=2021-02-01&format=text", nil)
	if err != nil {
		return "", fmt.Errorf("reading this VM's name from the instance metadata: %w", err)
	}
	name := strings.TrimSpace(string(data))
	if name == "" {
		return "", fmt.Errorf("reading this VM's name from the instance metadata: empty")
	}
	a.vmName = name
	return name, nil
}

// Document reads the whole Scheduled Events document.
func (a *Azure) Document(ctx context.Context) (AzureDocument, error) {
	data, err := a.do(ctx, http.MethodGet, a.eventsURL(), nil)
	if err != nil {
		return AzureDocument{}, fmt.Errorf("reading scheduled events: %w", err)
	}
	var doc AzureDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return AzureDocument{}, fmt.Errorf("decoding scheduled events: %w", err)
	}
	return doc, nil
}

// Events implements Source: the document's events that name this VM.
func (a *Azure) Events(ctx context.Context) ([]Event, error) {
	name, err := a.name(ctx)
	if err != nil {
		return nil, err
	}
	doc, err := a.Document(ctx)
	if err != nil {
		return nil, err
	}
	return azureEvents(doc, name), nil
}

func azureEvents(doc AzureDocument, name string) []Event {
	var out []Event
	for _, e := range doc.Events {
		ours := false
		for _, r := range e.Resources {
			if strings.EqualFold(r, name) {
				ours = true
			}
		}
		if !ours || e.EventID == "" {
			continue
		}
		ev := Event{ID: e.EventID, Kind: e.EventType, Status: e.EventStatus, Ackable: e.EventStatus == "Scheduled"}
		if t, err := time.Parse(time.RFC1123, e.NotBefore); err == nil {
			ev.NotBefore = t
		}
		if e.DurationInSeconds > 0 {
			ev.Duration = time.Duration(e.DurationInSeconds) * time.Second
		}
		out = append(out, ev)
	}
	return out
}

// Acknowledge implements Source: POST StartRequests for ev.
func (a *Azure) Acknowledge(ctx context.Context, ev Event) error {
	if !ev.Ackable {
		return nil
	}
	body, err := json.Marshal(AzureStartRequests{StartRequests: []AzureStartRequest{{EventID: ev.ID}}})
	if err != nil {
		return err
	}
	if _, err := a.do(ctx, http.MethodPost, a.eventsURL(), body); err != nil {
		return fmt.Errorf("acknowledging scheduled event %s: %w", ev.ID, err)
	}
	return nil
}
