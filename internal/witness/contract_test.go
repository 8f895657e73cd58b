package witness

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// contract is what every Backend must do, run against two clients of one
// witness (nodes "a" and "b").
type contract struct {
	a, b Backend
	ttl  time.Duration
	// advance moves the backends' clock on (fake-clock backends); nil
	// means the witness keeps real time and the test waits.
	advance func(d time.Duration)
	// slack is how long after the TTL the lease may still look held
	// (clock skew allowance, expiry sweeps).
	slack time.Duration
}

func (c contract) run(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	if h, tok, err := c.a.Holder(ctx); err != nil || h != "" || tok != 0 {
		t.Fatalf("fresh witness: Holder = %q %d %v", h, tok, err)
	}
	// a acquires; b is refused and told who holds it.
	ga, err := c.a.Acquire(ctx, "a", c.ttl)
	check("a acquires a free lease", err)
	if ga.Holder != "a" || ga.Token == 0 || ga.TTL < c.ttl {
		t.Fatalf("a's grant = %+v", ga)
	}
	_, err = c.b.Acquire(ctx, "b", c.ttl)
	var held *HeldError
	if !errors.Is(err, ErrHeld) || !errors.As(err, &held) || held.Holder != "a" || held.Token != ga.Token {
		t.Fatalf("b acquires a held lease: %v (held %+v)", err, held)
	}
	if h, tok, err := c.b.Holder(ctx); err != nil || h != "a" || tok != ga.Token {
		t.Fatalf("Holder = %q %d %v, want a %d", h, tok, err, ga.Token)
	}
	// Acquire by the holder renews, keeping the token; so does Renew.
	again, err := c.a.Acquire(ctx, "a", c.ttl)
	check("a acquires its own lease again", err)
	if again.Token != ga.Token {
		t.Fatalf("re-acquire changed the token %d -> %d", ga.Token, again.Token)
	}
	ga, err = c.a.Renew(ctx, again)
	check("a renews", err)
	if ga.Token != again.Token {
		t.Fatalf("renew changed the token")
	}

	// Release lets b in at once, with a greater token.
	check("a releases", c.a.Release(ctx, ga))
	gb, err := c.b.Acquire(ctx, "b", c.ttl)
	check("b acquires a released lease", err)
	if gb.Token <= ga.Token {
		t.Fatalf("token did not grow: a %d, then b %d", ga.Token, gb.Token)
	}
	if _, err := c.a.Renew(ctx, ga); !errors.Is(err, ErrLost) {
		t.Fatalf("a renews after release and takeover: %v, want ErrLost", err)
	}
	check("a releases a lease it no longer holds (no-op)", c.a.Release(ctx, ga))
	if h, _, err := c.a.Holder(ctx); err != nil || h != "b" {
		t.Fatalf("after a's stale release Holder = %q %v, want b", h, err)
	}

	// b stops renewing: a gets the lease only after it has expired.
	sent := time.Now()
	gb, err = c.b.Renew(ctx, gb)
	check("b renews", err)
	var ga2 Grant
	if c.advance != nil {
		c.advance(c.ttl - time.Millisecond)
		if _, err := c.a.Acquire(ctx, "a", c.ttl); !errors.Is(err, ErrHeld) {
			t.Fatalf("a acquires before b's lease expired: %v", err)
		}
		c.advance(c.slack + 2*time.Millisecond)
		ga2, err = c.a.Acquire(ctx, "a", c.ttl)
		check("a acquires an expired lease", err)
	} else {
		deadline := sent.Add(c.ttl + c.slack + 5*time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			ga2, err = c.a.Acquire(ctx, "a", c.ttl)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrHeld) || time.Now().After(deadline) {
				t.Fatalf("a acquires after b's lease expired: %v", err)
			}
			<-tick.C
		}
		if took := time.Since(sent); took < gb.TTL {
			t.Fatalf("a acquired %v after b's renewal was sent, before its %v lease time", took, gb.TTL)
		}
	}
	if ga2.Token <= gb.Token {
		t.Fatalf("token did not grow on takeover: b %d, then a %d", gb.Token, ga2.Token)
	}
	if _, err := c.b.Renew(ctx, gb); !errors.Is(err, ErrLost) {
		t.Fatalf("b renews after expiry and takeover: %v, want ErrLost", err)
	}
	check("a releases", c.a.Release(ctx, ga2))
	if h, tok, err := c.b.Holder(ctx); err != nil || h != "" || tok != 0 {
		t.Fatalf("after release Holder = %q %d %v", h, tok, err)
	}
}

func TestFakeContract(t *testing.T) {
	clk := clock.NewFake(t0)
	w := NewFake(clk)
	contract{a: w, b: w, ttl: 5 * time.Second, advance: clk.Advance}.run(t)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs a test server process and stops it by its PID when the
// test ends. It returns once the port accepts connections.
func startServer(t *testing.T, port int, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = t.TempDir() // anything the server writes stays out of the tree
	out, err := os.CreateTemp(t.TempDir(), "server-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("%s exited before listening on %s:\n%s", name, addr, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s within 60s", name, addr)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add("a", "1", "1700000000000")
	f.Add("", "", "")
	f.Add("node-b", "18446744073709551615", "-1")
	f.Add("x", "0", "")
	f.Add("x", "-3", "1e9")
	f.Fuzz(func(t *testing.T, holder, token, expires string) {
		rec, err := parseRecord(holder, token, expires)
		if err != nil {
			return
		}
		if rec.holder != holder || (holder != "" && rec.token == 0) {
			t.Fatalf("parseRecord(%q, %q, %q) = %+v", holder, token, expires, rec)
		}
		if token != "" && strconv.FormatUint(rec.token, 10) != token && rec.token != 0 {
			// Leading zeros or '+' are the only other accepted forms.
			if n, _ := strconv.ParseUint(token, 10, 64); n != rec.token {
				t.Fatalf("token %q decoded as %d", token, rec.token)
			}
		}
	})
}
