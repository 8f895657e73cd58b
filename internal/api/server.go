package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/batonha/baton/internal/feed"
	"github.com/batonha/baton/internal/httpserve"
)

// Backend is what the daemon offers the API.
type Backend interface {
	Status() Status
	Switchover(ctx context.Context) error
	Maintenance(ctx context.Context, on bool) error
}

// ErrRefused marks a command the daemon refused (answered 409).
var ErrRefused = errors.New("refused")

// Server serves the API.
type Server struct {
	backend Backend
	metrics http.Handler
	extra   func(mux *http.ServeMux)
	log     *slog.Logger
	token   string
	feed    *feed.Hub
	ro      bool
	unix    net.Listener
	tcp     net.Listener
	tcpAddr net.Addr
	srv     []*http.Server

	unixLim, tcpLim *httpserve.Limited
}

// Options configure the listeners.
type Options struct {
	Socket string // unix socket path (mode 0600)
	Listen string // optional TCP host:port (needs Token)
	Token  string // bearer token for TCP
	// TLSCert and TLSKey serve the TCP listener as HTTPS; both empty
	// serve plain HTTP (api.insecure).
	TLSCert, TLSKey string
	// MaxConns caps each listener's concurrent connections (default
	// httpserve.MaxConns).
	MaxConns int
	Metrics  http.Handler // optional, served at /metrics
	// Extra registers more endpoints (subsystems' /v1/NAME/...).
	Extra func(mux *http.ServeMux)
	// Events, when set, is served at GET /v1/events.
	Events *feed.Hub
	// ReadOnly refuses every command (api.read_only).
	ReadOnly bool
}

// Listen binds the listeners; Serve then serves them.
func Listen(b Backend, opt Options, log *slog.Logger) (*Server, error) {
	s := &Server{backend: b, metrics: opt.Metrics, extra: opt.Extra, log: log.With("component", "api"), token: opt.Token,
		feed: opt.Events, ro: opt.ReadOnly}
	if opt.Socket != "" {
		if err := os.MkdirAll(filepath.Dir(opt.Socket), 0o755); err != nil {
			return nil, fmt.Errorf("creating API socket directory: %w", err)
		}
		// A socket left by a crashed run is stale only if nobody answers on it.
		if c, err := net.DialTimeout("unix", opt.Socket, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("API socket %s: another baton is running", opt.Socket)
		}
		_ = os.Remove(opt.Socket)
		l, err := net.Listen("unix", opt.Socket)
		if err != nil {
			return nil, fmt.Errorf("binding API socket %s: %w", opt.Socket, err)
		}
		if err := os.Chmod(opt.Socket, 0o600); err != nil {
			l.Close()
			return nil, fmt.Errorf("setting mode of API socket %s: %w", opt.Socket, err)
		}
		s.unixLim = httpserve.Limit(l, opt.MaxConns)
		s.unix = s.unixLim
	}
	if opt.Listen != "" {
		if opt.Token == "" {
			s.Close()
			return nil, errors.New("API TCP listener needs a token")
		}
		l, err := net.Listen("tcp", opt.Listen)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("binding API listener %s: %w", opt.Listen, err)
		}
		s.tcpAddr = l.Addr()
		s.tcpLim = httpserve.Limit(l, opt.MaxConns)
		s.tcp = s.tcpLim
		if opt.TLSCert != "" || opt.TLSKey != "" {
			tl, err := httpserve.TLS(s.tcp, opt.TLSCert, opt.TLSKey)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("API listener %s: %w", opt.Listen, err)
			}
			s.tcp = tl
		}
	}
	return s, nil
}

// Limits returns the capped listeners of the socket and of the TCP
// listener (nil when not bound), whose Dropped counts what each closed.
func (s *Server) Limits() (socket, tcp *httpserve.Limited) { return s.unixLim, s.tcpLim }

// TCPAddr is the bound TCP address, if any.
func (s *Server) TCPAddr() net.Addr {
	return s.tcpAddr
}

// Serve serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 2)
	if s.unix != nil {
		srv := httpserve.New(s.Handler(false))
		s.srv = append(s.srv, srv)
		go func() { errc <- srv.Serve(s.unix) }()
	}
	if s.tcp != nil {
		srv := httpserve.New(s.Handler(true))
		s.srv = append(s.srv, srv)
		go func() { errc <- srv.Serve(s.tcp) }()
	}
	select {
	case <-ctx.Done():
		s.Close()
		return nil
	case err := <-errc:
		s.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving API: %w", err)
	}
}

// Close stops the listeners and removes the socket.
func (s *Server) Close() {
	for _, srv := range s.srv {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
	}
	if s.unix != nil {
		s.unix.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
}

// Handler returns the API's HTTP handler; auth requires the bearer token.
func (s *Server) Handler(auth bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.backend.Status())
	})
	mux.HandleFunc("POST /v1/switchover", func(w http.ResponseWriter, r *http.Request) {
		s.command(w, r, "switchover", s.backend.Switchover)
	})
	mux.HandleFunc("POST /v1/maintenance/{mode}", func(w http.ResponseWriter, r *http.Request) {
		mode := r.PathValue("mode")
		if mode != "on" && mode != "off" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "mode must be on or off"})
			return
		}
		s.command(w, r, "maintenance "+mode, func(ctx context.Context) error {
			return s.backend.Maintenance(ctx, mode == "on")
		})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	if s.feed != nil {
		mux.HandleFunc("GET /v1/events", s.events)
	}
	if auth {
		mux.HandleFunc("POST /ui/login", s.login)
	}
	if s.extra != nil {
		s.extra(mux)
	}
	var h http.Handler = mux
	if s.ro {
		h = readOnlyGuard(mux)
	}
	if !auth {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open(r.URL.Path) && !s.authorized(r) {
			refuseUnauthorized(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) command(w http.ResponseWriter, r *http.Request, what string, fn func(context.Context) error) {
	err := fn(r.Context())
	switch {
	case err == nil:
		s.log.Info("operator command", "command", what)
		writeJSON(w, http.StatusOK, s.backend.Status())
	case errors.Is(err, ErrRefused):
		s.log.Warn("operator command refused", "command", what, "err", err)
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Client talks to a running daemon.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for a unix socket path, or for an
// http(s):// URL with a bearer token; roots, when set, are the CAs an
// https server's certificate must chain to (the cluster CA).
func NewClient(target, token string, roots ...*x509.CertPool) *Client {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		hc := &http.Client{Timeout: 30 * time.Second}
		if len(roots) > 0 && roots[0] != nil {
			hc.Transport = &http.Transport{TLSClientConfig: clusterTLS(roots[0])}
		}
		return &Client{base: strings.TrimRight(target, "/"), token: token, hc: hc}
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", target)
	}}
	return &Client{base: "http://baton", hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// clusterTLS trusts a server whose certificate the cluster CA signed,
// whatever its name: the CA signs only the pair's nodes, named by node
// name, which the URL (an address) does not carry.
func clusterTLS(roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // the chain is verified below, the name is not
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the API server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		},
	}
}

// Status fetches the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", &st)
	return st, err
}

// Switchover asks for a planned handover.
func (c *Client) Switchover(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodPost, "/v1/switchover", &st)
	return st, err
}

// Maintenance turns maintenance mode on or off.
func (c *Client) Maintenance(ctx context.Context, on bool) (Status, error) {
	mode := "off"
	if on {
		mode = "on"
	}
	var st Status
	err := c.do(ctx, http.MethodPost, "/v1/maintenance/"+mode, &st)
	return st, err
}

// Raw calls path and returns the answer's body and status code as they
// are, for subsystem endpoints (/v1/sessions, /v1/sync/...).
func (c *Client) Raw(ctx context.Context, method, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("contacting baton: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s answer: %w", path, err)
	}
	return b, resp.StatusCode, nil
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("contacting baton: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode == http.StatusConflict {
			return fmt.Errorf("%w: %s", ErrRefused, e.Error)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding %s answer: %w", path, err)
	}
	return nil
}
