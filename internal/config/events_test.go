package config

import (
	"strings"
	"testing"
	"time"
)

func TestEventsSection(t *testing.T) {
	c, err := Parse([]byte(minimalYAML+"events:\n  cloud: azure\n  resume: true\n"), "ev.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Events
	if e == nil || e.Cloud != "azure" || !e.Resume || e.Poll != time.Second || e.Endpoint != "http://169.254.169.254" || e.Timeout != 2*time.Second {
		t.Fatalf("events: %+v", e)
	}

	_, err = Parse([]byte(minimalYAML+"events:\n  cloud: gcp\n  poll: 10ms\n  endpoint: ftp://x\n"), "ev.yaml", nil)
	if err == nil {
		t.Fatal("bad events section loaded")
	}
	for _, key := range []string{"events.cloud", "events.poll", "events.endpoint"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}
