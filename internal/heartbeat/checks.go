package heartbeat

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/batonha/baton/internal/redact"
)

// prober runs one probe of the peer; nil means it answered.
type prober func(ctx context.Context) error

func newProber(c *CheckConfig) prober {
	switch c.Type {
	case KindTCP:
		return tcpProber(c.Target)
	case KindHTTP:
		return httpProber(c.Target, c.Insecure)
	case KindICMP:
		return newICMPProber(net.ParseIP(c.Target)).probe
	}
	return func(context.Context) error { return fmt.Errorf("unknown check type %q", c.Type) }
}

// checkLoop probes every Interval (on the injected clock) and records the
// results; the timer is armed before each probe so the period does not
// drift with the probe's duration.
func (m *Monitor) checkLoop(ctx context.Context, p *pathState) {
	probe := newProber(p.check)
	t := m.clk.NewTimer(p.check.Interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, p.check.Timeout)
		start := time.Now() // real time: this measures I/O
		err := probe(pctx)
		took := time.Since(start)
		cancel()
		if ctx.Err() != nil {
			return
		}
		m.checkResult(p, took, err)
		select {
		case <-t.C():
			t.Reset(p.check.Interval)
		case <-ctx.Done():
			return
		}
	}
}

func tcpProber(target string) prober {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return fmt.Errorf("tcp check of %s: %w", target, err)
		}
		return c.Close()
	}
}

func httpProber(target string, insecure bool) prober {
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:             nil, // the peer is reached directly, never through a proxy
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: insecure},
			DisableKeepAlives: true,
		},
		// A redirect is not a 2xx answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return fmt.Errorf("http check of %s: %w", redact.URL(target), redact.Err(err))
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("http check: %w", redact.Err(err))
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("http check of %s: status %d", redact.URL(target), resp.StatusCode)
		}
		return nil
	}
}

// icmpProber sends echo requests: on a raw socket when privileged, else on
// an unprivileged ICMP datagram socket (net.ipv4.ping_group_range).
type icmpProber struct {
	target net.IP
	id     int
	seq    atomic.Uint32
}

func newICMPProber(target net.IP) *icmpProber {
	return &icmpProber{target: target, id: rand.IntN(0xffff) + 1}
}

func (p *icmpProber) probe(ctx context.Context) error {
	v4 := p.target.To4() != nil
	raw, unpriv, laddr, proto := "ip4:icmp", "udp4", "0.0.0.0", 1
	var reqType, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if !v4 {
		raw, unpriv, laddr, proto = "ip6:ipv6-icmp", "udp6", "::", 58
		reqType, replyType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	privileged := true
	conn, err := icmp.ListenPacket(raw, laddr)
	if err != nil {
		privileged = false
		var uerr error
		if conn, uerr = icmp.ListenPacket(unpriv, laddr); uerr != nil {
			return fmt.Errorf("opening ICMP socket: %w", errors.Join(err, uerr))
		}
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	seq := int(uint16(p.seq.Add(1)))
	req := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: []byte("baton-heartbeat")}}
	b, err := req.Marshal(nil) // the kernel fills in the ICMPv6 checksum
	if err != nil {
		return fmt.Errorf("building ICMP echo: %w", err)
	}
	var dst net.Addr = &net.IPAddr{IP: p.target}
	if !privileged {
		dst = &net.UDPAddr{IP: p.target}
	}
	if _, err := conn.WriteTo(b, dst); err != nil {
		return fmt.Errorf("sending ICMP echo to %s: %w", p.target, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("icmp check of %s: no echo reply: %w", p.target, ctx.Err())
			}
			return fmt.Errorf("icmp check of %s: reading reply: %w", p.target, err)
		}
		rm, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || rm.Type != replyType {
			continue
		}
		echo, ok := rm.Body.(*icmp.Echo)
		// An unprivileged socket's kernel rewrites the ID and filters by it.
		if !ok || echo.Seq != seq || (privileged && echo.ID != p.id) || !sameIP(from, p.target) {
			continue
		}
		return nil
	}
}

func sameIP(a net.Addr, ip net.IP) bool {
	switch a := a.(type) {
	case *net.IPAddr:
		return a.IP.Equal(ip)
	case *net.UDPAddr:
		return a.IP.Equal(ip)
	}
	return false
}
