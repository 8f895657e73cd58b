package redact

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pa55@10.0.0.5:8443/health": "https://REDACTED@10.0.0.5:8443/health",
		"http://tok@peer/x?y=1":                  "http://REDACTED@peer/x?y=1",
		"http://10.0.0.5/health":                 "http://10.0.0.5/health",
		"http://u:p%zz@h/":                       "http://REDACTED@h/", // does not parse
		"u:p@h:80":                               "REDACTED@h:80",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrRedactsHTTPClientErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://user:pa55@127.0.0.1:1/", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = http.DefaultClient.Do(req)
	var ue *url.Error
	if !errors.As(Err(err), &ue) || strings.Contains(err.Error(), "pa55") || strings.Contains(err.Error(), "user") {
		t.Fatalf("error not redacted: %v", err)
	}
}
