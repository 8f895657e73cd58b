package witness

// This is the only file that imports etcd's embedded server: it makes the
// test binary large and slow to build, and belongs in tests only.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startEtcd runs a one-member etcd in the test process on free 127.0.0.1
// ports, with a short election timeout so 1s leases are allowed.
func startEtcd(t *testing.T) string {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "witness"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs, cfg.ElectionMs = 10, 100
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("starting embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("embedded etcd: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("embedded etcd not ready within 30s")
	}
	return client.String()
}

func newEtcdBackend(t *testing.T, endpoint string, clk clock.Clock) *Etcd {
	t.Helper()
	cfg := Config{Type: TypeEtcd}
	cfg.SetDefaults()
	cfg.Insecure = true // the test servers speak plain HTTP
	cfg.Etcd.Endpoints = []string{endpoint}
	b, err := New(context.Background(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.(*Etcd).Close() })
	return b.(*Etcd)
}

func TestEtcd(t *testing.T) {
	ep := startEtcd(t)
	t.Run("contract", func(t *testing.T) {
		a, b := newEtcdBackend(t, ep, nil), newEtcdBackend(t, ep, nil)
		contract{a: a, b: b, ttl: time.Second, slack: time.Second}.run(t)
	})
	t.Run("key deleted", func(t *testing.T) {
		a := newEtcdBackend(t, ep, nil)
		ctx := context.Background()
		g, err := a.Acquire(ctx, "a", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.cli.Delete(ctx, a.key); err != nil { // a.cli: dialed by the Acquire above
			t.Fatal(err)
		}
		if _, err := a.Renew(ctx, g); !errors.Is(err, ErrLost) {
			t.Fatalf("renew after the key was deleted: %v, want ErrLost", err)
		}
		g2, err := a.Acquire(ctx, "a", 2*time.Second)
		if err != nil || g2.Token <= g.Token {
			t.Fatalf("acquire after delete: %+v %v", g2, err)
		}
		_ = a.Release(ctx, g2)
	})
	t.Run("keepers", func(t *testing.T) {
		testKeepersReal(t, newEtcdBackend(t, ep, nil), newEtcdBackend(t, ep, nil))
	})
	t.Run("redial after no answer", func(t *testing.T) {
		// Every request that etcd did not answer drops the client: the
		// next one dials afresh instead of waiting on the old connection.
		endpoint, dials := "http://127.0.0.1:1", 0 // a closed port first
		e, err := NewEtcd(func() (*clientv3.Client, error) {
			dials++
			return clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Logger: zap.NewNop()})
		}, "/redial", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err = e.Acquire(ctx, "a", 2*time.Second)
		cancel()
		if err == nil {
			t.Fatal("acquire from a closed port succeeded")
		}
		endpoint = ep
		g, err := e.Acquire(context.Background(), "a", 2*time.Second)
		if err != nil || dials != 2 {
			t.Fatalf("acquire after the endpoint answers: %v (dials %d, want 2)", err, dials)
		}
		// An answer (even a refusal) keeps the client.
		if _, err := e.Renew(context.Background(), Grant{Holder: "a", Token: g.Token, handle: "12345"}); !errors.Is(err, ErrLost) {
			t.Fatalf("renew of an unknown lease: %v, want ErrLost", err)
		}
		if _, _, err := e.Holder(context.Background()); err != nil || dials != 2 {
			t.Fatalf("holder: %v (dials %d, want 2)", err, dials)
		}
		_ = e.Release(context.Background(), g)
	})
}

// testKeepersReal runs two Keepers on real time against a real witness:
// a holds, then freezes (stops renewing without releasing); b takes over
// only after a's step-down deadline, with a greater token.
func testKeepersReal(t *testing.T, wa, wb Backend) {
	mk := func(node string, w Backend) (*Keeper, context.CancelFunc) {
		k, err := NewKeeper(KeeperConfig{Node: node, TTL: 2 * time.Second, DriftMargin: 200 * time.Millisecond,
			StepDown: 200 * time.Millisecond, Retry: 100 * time.Millisecond, Backend: w})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = k.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return k, cancel
	}
	a, freezeA := mk("a", wa)
	a.Want(true)
	acq := mustAcquired(t, a)
	b, _ := mk("b", wb)
	b.Want(true)
	// A slow witness may refuse without saying who holds it (Held{""})
	// before it names a.
	for {
		h, ok := nextEvent(t, b).(Held)
		if !ok || (h.Holder != "a" && h.Holder != "") {
			t.Fatalf("b: %#v", h)
		}
		if h.Holder == "a" {
			break
		}
	}
	// a keeps the lease across several TTLs.
	eventually(t, "a renewing", func() bool { return a.Status().Renewals >= 4 })
	leaveBy, _ := a.MustLeaveBy()
	freezeA()
	leaveBy2, _ := a.MustLeaveBy()
	if leaveBy2.After(leaveBy) {
		leaveBy = leaveBy2
	}
	var e Event
	for {
		e = nextEvent(t, b)
		if h, ok := e.(Held); !ok || h.Holder != "a" && h.Holder != "" {
			break
		}
	}
	{
		got, ok := e.(Acquired)
		if !ok {
			t.Fatalf("b: %#v", e)
		}
		if now := time.Now(); !now.After(leaveBy) {
			t.Fatalf("b acquired at %v, before a's step-down deadline %v", now, leaveBy)
		}
		if got.Token <= acq.Token {
			t.Fatalf("b token %d, a had %d", got.Token, acq.Token)
		}
	}
}
