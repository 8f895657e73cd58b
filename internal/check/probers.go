package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/batonha/baton/internal/procgroup"
	"github.com/batonha/baton/internal/redact"
)

// Limits on what a check keeps of its target's output.
const (
	maxOutput     = 4096 // bytes of command output kept (the tail)
	maxResultLine = 200  // bytes of the last output line reported
	maxHTTPBody   = 64 << 10
)

// NewProber returns the real prober for c. Each prober also applies
// c.Timeout (default DefaultTimeout) itself, so it is safe to use alone.
func NewProber(c Config) (Prober, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	switch c.Type {
	case "exec":
		if len(c.Command) == 0 || c.Command[0] == "" {
			return nil, fmt.Errorf("check %q: exec check needs a command", c.Name)
		}
		return &ExecProber{Argv: c.Command, Timeout: timeout}, nil
	case "interface":
		if err := validIfaceName(c.Interface); err != nil {
			return nil, fmt.Errorf("check %q: %w", c.Name, err)
		}
		return newIfaceProber(c.Interface)
	case "tcp":
		if _, _, err := net.SplitHostPort(c.Target); err != nil {
			return nil, fmt.Errorf("check %q: tcp target %q: %w", c.Name, c.Target, err)
		}
		return &TCPProber{Address: c.Target, Timeout: timeout}, nil
	case "http":
		u, err := url.Parse(c.Target)
		if err != nil {
			return nil, fmt.Errorf("check %q: http target: %w", c.Name, redact.Err(err))
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("check %q: http target %q must be an http:// or https:// URL", c.Name, redact.URL(c.Target))
		}
		return NewHTTPProber(c.Target, timeout), nil
	default:
		return nil, fmt.Errorf("check %q: unknown check type %q (want exec, interface, tcp or http)", c.Name, c.Type)
	}
}

// ExecProber runs a command; exit status 0 passes. The command runs in its
// own process group, which is killed when the timeout passes or the
// context ends. Its output (stdout and stderr) is kept for the error
// message: the last non-empty line, truncated.
type ExecProber struct {
	Argv    []string
	Timeout time.Duration
}

// Probe runs the command once.
func (p *ExecProber) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Argv[0], p.Argv[1:]...)
	out := &tailBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	procgroup.KillOnCancel(cmd)
	// Should a process outside the group keep the output open, stop
	// waiting for it soon after the kill.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	last := lastLine(out.Bytes())
	if last != "" {
		last = ": " + last
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("command %s killed after timeout %v%s", p.Argv[0], p.Timeout, last)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("command %s: %w", p.Argv[0], ctx.Err())
	}
	return fmt.Errorf("command %s: %w%s", p.Argv[0], err, last)
}

// TCPProber passes when a TCP connection to Address opens within Timeout.
type TCPProber struct {
	Address string
	Timeout time.Duration
}

// Probe connects once and closes the connection.
func (p *TCPProber) Probe(ctx context.Context) error {
	d := net.Dialer{Timeout: p.Timeout}
	conn, err := d.DialContext(ctx, "tcp", p.Address)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", p.Address, err)
	}
	return conn.Close()
}

// HTTPProber passes when a GET of URL answers 2xx within Timeout. It
// does not follow redirects, ignores proxy settings and opens a new
// connection for every probe.
type HTTPProber struct {
	URL     string
	Timeout time.Duration
	client  *http.Client
}

// NewHTTPProber returns an HTTPProber for url.
func NewHTTPProber(url string, timeout time.Duration) *HTTPProber {
	return &HTTPProber{
		URL:     url,
		Timeout: timeout,
		client: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// Probe sends one GET.
func (p *HTTPProber) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return fmt.Errorf("building request for %s: %w", redact.URL(p.URL), redact.Err(err))
	}
	req.Header.Set("User-Agent", "baton-check")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", redact.URL(p.URL), redact.Err(err))
	}
	defer resp.Body.Close()
	_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, maxHTTPBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: status %s", redact.URL(p.URL), resp.Status)
	}
	if rerr != nil {
		return fmt.Errorf("GET %s: reading body: %w", redact.URL(p.URL), rerr)
	}
	return nil
}

func validIfaceName(name string) error {
	switch {
	case name == "":
		return errors.New("interface check needs an interface name")
	case len(name) > 15:
		return fmt.Errorf("interface name %q is longer than 15 bytes", name)
	case name == "." || name == ".." || strings.ContainsAny(name, "/ \t\n\x00"):
		return fmt.Errorf("invalid interface name %q", name)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it. It is written by the
// goroutines os/exec copies output with, one at a time.
type tailBuffer struct {
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= b.max {
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

func (b *tailBuffer) Bytes() []byte { return b.buf }

// lastLine returns the last non-blank line of out, trimmed, made valid
// UTF-8 and cut to maxResultLine bytes.
func lastLine(out []byte) string {
	out = bytes.TrimRight(out, " \t\r\n")
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	s := strings.ToValidUTF8(strings.TrimSpace(string(out)), "?")
	if len(s) > maxResultLine {
		cut := maxResultLine
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
