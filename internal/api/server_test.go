package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonha/baton/internal/pki"
)

type fakeBackend struct {
	maint   bool
	refuse  bool
	switchs int
}

func (f *fakeBackend) Status() Status { return Status{Node: "a", Role: "ACTIVE", Maintenance: f.maint} }
func (f *fakeBackend) Switchover(ctx context.Context) error {
	if f.refuse {
		return fmt.Errorf("switchover: %w: the peer is FAULT", ErrRefused)
	}
	f.switchs++
	return nil
}
func (f *fakeBackend) Maintenance(ctx context.Context, on bool) error { f.maint = on; return nil }

func start(t *testing.T, b Backend, opt Options) *Server {
	t.Helper()
	s, err := Listen(b, opt, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "baton.sock")
	b := &fakeBackend{}
	start(t, b, Options{Socket: sock})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	c := NewClient(sock, "")
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || st.Node != "a" || st.Role != "ACTIVE" {
		t.Fatalf("status %+v %v", st, err)
	}
	if st, err := c.Maintenance(ctx, true); err != nil || !st.Maintenance {
		t.Fatalf("maintenance %+v %v", st, err)
	}
	if _, err := c.Switchover(ctx); err != nil || b.switchs != 1 {
		t.Fatalf("switchover %v", err)
	}
	b.refuse = true
	if _, err := c.Switchover(ctx); !errors.Is(err, ErrRefused) {
		t.Fatalf("refused switchover must be ErrRefused, got %v", err)
	}
	// A second daemon on the same socket is refused.
	if _, err := Listen(b, Options{Socket: sock}, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("second listener on a live socket must fail")
	}
}

func TestTCPNeedsToken(t *testing.T) {
	if _, err := Listen(&fakeBackend{}, Options{Listen: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("TCP without a token must be refused")
	}
	s := start(t, &fakeBackend{}, Options{Listen: "127.0.0.1:0", Token: "s3cret-token"})
	url := "http://" + s.TCPAddr().String()
	for _, tc := range []struct {
		auth string
		code int
	}{{"", 401}, {"Bearer wrong", 401}, {"Bearer s3cret-token", 200}} {
		req, _ := http.NewRequest("GET", url+"/v1/status", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Fatalf("auth %q: got %d, want %d", tc.auth, resp.StatusCode, tc.code)
		}
	}
	if _, err := NewClient(url, "s3cret-token").Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(url, "nope").Status(context.Background()); err == nil {
		t.Fatal("bad token must fail")
	}
}

// The TCP API serves HTTPS with the cluster certificate; the CLI's client
// trusts it through the cluster CA; plain HTTP gets nothing.
func TestTCPServesTLSWithClusterCertificate(t *testing.T) {
	dir := t.TempDir()
	if err := pki.Generate(dir, []string{"nva-a", "nva-b"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	s := start(t, &fakeBackend{}, Options{Listen: "127.0.0.1:0", Token: "0123456789abcdef",
		TLSCert: filepath.Join(dir, "nva-a.crt"), TLSKey: filepath.Join(dir, "nva-a.key")})
	addr := s.TCPAddr().String()
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	st, err := NewClient("https://"+addr, "0123456789abcdef", roots).Status(context.Background())
	if err != nil || st.Node != "a" {
		t.Fatalf("status over https: %+v %v", st, err)
	}
	if _, err := NewClient("https://"+addr, "0123456789abcdef", x509.NewCertPool()).Status(context.Background()); err == nil {
		t.Fatal("a certificate from another CA was trusted")
	}
	if _, err := NewClient("http://"+addr, "0123456789abcdef").Status(context.Background()); err == nil {
		t.Fatal("plain HTTP answered")
	}
}
