package heartbeat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The HTTP peer check's errors never show the target's credentials.
func TestHTTPPeerCheckRedactsCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://admin:pa55word@", 1)
	closed := "http://admin:pa55word@127.0.0.1:1/health"
	for _, target := range []string{withCreds, closed} {
		err := httpProber(target, false)(context.Background())
		if err == nil {
			t.Fatalf("%s: check passed", target)
		}
		if strings.Contains(err.Error(), "pa55word") || strings.Contains(err.Error(), "admin") {
			t.Errorf("credentials in %q", err)
		}
	}
}
