// Package httpserve is how baton serves HTTP (the API, metrics, the
// peerings webhook): bounded timeouts and header sizes, a cap on
// concurrent connections, optional TLS and a bearer token. A flood of idle
// or slow connections then costs a bounded number of descriptors and
// goroutines, and none is held for long.
package httpserve

import (
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of every server. A handler that streams (an event feed) clears
// its write deadline with http.ResponseController.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 30 * time.Second
	MaxHeaderBytes    = 16 << 10
	// MaxConns is the default cap on concurrent connections of one
	// listener.
	MaxConns = 128
)

// New returns a server for h with baton's limits.
func New(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Limited is a listener that holds at most a fixed number of connections:
// one accepted past that is closed at once (the kernel's backlog is kept
// empty, so a flood does not delay the listener's other clients for
// longer than the flood's connections live).
type Limited struct {
	net.Listener
	sem     chan struct{}
	dropped atomic.Uint64
}

// Limit caps l at n concurrent connections (n <= 0: MaxConns).
func Limit(l net.Listener, n int) *Limited {
	if n <= 0 {
		n = MaxConns
	}
	return &Limited{Listener: l, sem: make(chan struct{}, n)}
}

// Dropped counts connections closed because the cap was reached.
func (l *Limited) Dropped() uint64 { return l.dropped.Load() }

// Accept returns the next connection within the cap.
func (l *Limited) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
		default:
			l.dropped.Add(1)
			c.Close()
		}
	}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// TLS wraps l to serve TLS 1.2+ with the certificate and key files.
func TLS(l net.Listener, certFile, keyFile string) (net.Listener, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// Bearer serves h only to requests carrying "Authorization: Bearer
// token"; others get 401. An empty token lets every request through.
func Bearer(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="baton"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
