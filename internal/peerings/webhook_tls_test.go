package peerings

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/pki"
)

// The webhook serves HTTPS with its certificate; a plain HTTP request
// gets no answer.
func TestWebhookServesTLS(t *testing.T) {
	dir := t.TempDir()
	if err := pki.Generate(dir, []string{"hook", "other"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var c WebhookConfig
	c.Listen = addr
	c.TLS.CertFile, c.TLS.KeyFile = filepath.Join(dir, "hook.crt"), filepath.Join(dir, "hook.key")
	triggered := make(chan struct{}, 1)
	wh, err := NewWebhook(token, func() { triggered <- struct{}{} }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeWebhook(ctx, c, wh) }()
	t.Cleanup(func() { cancel(); <-done })
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	post := func(scheme string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, scheme+"://"+addr+"/", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+token)
		return hc.Do(req)
	}
	deadline := time.Now().Add(10 * time.Second)
	var resp *http.Response
	for {
		if resp, err = post("https"); err == nil || time.Now().After(deadline) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("webhook stopped: %v", err)
		case <-time.After(20 * time.Millisecond): // polling for the listener, bounded by the deadline
		}
	}
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("https POST: %v %v", resp, err)
	}
	resp.Body.Close()
	<-triggered
	if resp, err := post("http"); err == nil && resp.StatusCode/100 == 2 {
		t.Fatal("plain HTTP triggered the webhook")
	}
}
