package witness

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Etcd is the etcd v3 witness. The lease is one key whose value is the
// holder's name, attached to an etcd lease with the TTL (etcd counts whole
// seconds and rounds up; its minimum depends on the cluster's election
// timeout, about 2s by default). The key is created only if absent, in one
// transaction, so the fencing token is the key's create revision: every
// new grant creates it again at a later revision of the cluster. etcd
// removes the key when the lease expires on the etcd leader's clock.
//
// A request that gets no answer (a timeout, an unreachable cluster) makes
// the backend dial a new client for the next one: gRPC would otherwise
// keep sending on a connection whose packets were lost, or wait out its
// reconnect backoff (seconds), after the witness is back.
type Etcd struct {
	key   string
	clock clock.Clock
	dial  func() (*clientv3.Client, error)

	mu  sync.Mutex
	cli *clientv3.Client // nil: dial before the next request
}

// NewEtcd returns the etcd witness on key; dial makes a client (without
// blocking until it is connected) and is called again after a request
// that got no answer.
func NewEtcd(dial func() (*clientv3.Client, error), key string, c clock.Clock) (*Etcd, error) {
	if key == "" {
		return nil, errors.New("creating etcd witness: key is empty")
	}
	if c == nil {
		c = clock.Real{}
	}
	e := &Etcd{key: key, clock: c, dial: dial}
	if _, err := e.client(); err != nil {
		return nil, err
	}
	return e, nil
}

// Close closes the client.
func (e *Etcd) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli == nil {
		return nil
	}
	err := e.cli.Close()
	e.cli = nil
	return err
}

// client returns the current client, dialing one if needed.
func (e *Etcd) client() (*clientv3.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cli == nil {
		cli, err := e.dial()
		if err != nil {
			return nil, fmt.Errorf("creating etcd client for witness key %s: %w", e.key, err)
		}
		e.cli = cli
	}
	return e.cli, nil
}

// unanswered drops cli after a request that got no answer from etcd (an
// answer is success, lost, held or another error etcd sent), so the next
// request dials afresh.
func (e *Etcd) unanswered(cli *clientv3.Client, err error) {
	var etcdErr rpctypes.EtcdError
	if err == nil || errors.Is(err, ErrLost) || errors.Is(err, ErrHeld) || errors.As(err, &etcdErr) {
		return
	}
	e.mu.Lock()
	if e.cli != cli {
		e.mu.Unlock()
		return
	}
	e.cli = nil
	e.mu.Unlock()
	go cli.Close()
}

func ttlSeconds(ttl time.Duration) int64 {
	return int64((ttl + time.Second - 1) / time.Second)
}

func (e *Etcd) Acquire(ctx context.Context, holder string, ttl time.Duration) (Grant, error) {
	if holder == "" || ttl <= 0 {
		return Grant{}, fmt.Errorf("acquiring etcd lease %s: holder %q ttl %v: invalid", e.key, holder, ttl)
	}
	sent := e.clock.Now()
	cli, err := e.client()
	if err != nil {
		return Grant{}, fmt.Errorf("acquiring etcd lease: %w", err)
	}
	g, err := e.acquire(ctx, cli, sent, holder, ttl)
	e.unanswered(cli, err)
	return g, err
}

func (e *Etcd) acquire(ctx context.Context, cli *clientv3.Client, sent time.Time, holder string, ttl time.Duration) (Grant, error) {
	get, err := cli.Get(ctx, e.key)
	if err != nil {
		return Grant{}, fmt.Errorf("acquiring etcd lease %s: reading holder: %w", e.key, err)
	}
	if len(get.Kvs) == 1 {
		kv := get.Kvs[0]
		cur, tok := string(kv.Value), uint64(kv.CreateRevision)
		if cur != holder {
			return Grant{}, fmt.Errorf("acquiring etcd lease %s for %s: %w", e.key, holder, heldBy(cur, tok))
		}
		// Ours already (a restart, or a keeper that gave up early): renew.
		g := Grant{Holder: holder, Token: tok, TTL: ttl, Acquired: sent, handle: strconv.FormatInt(kv.Lease, 10)}
		return e.renew(ctx, cli, sent, g)
	}
	lease, err := cli.Grant(ctx, ttlSeconds(ttl))
	if err != nil {
		return Grant{}, fmt.Errorf("acquiring etcd lease %s: granting a %v lease: %w", e.key, ttl, err)
	}
	txn, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(e.key), "=", 0)).
		Then(clientv3.OpPut(e.key, holder, clientv3.WithLease(lease.ID))).
		Else(clientv3.OpGet(e.key)).
		Commit()
	if err != nil {
		e.revoke(cli, lease.ID)
		return Grant{}, fmt.Errorf("acquiring etcd lease %s: %w", e.key, err)
	}
	if !txn.Succeeded {
		e.revoke(cli, lease.ID)
		held := &HeldError{}
		if rs := txn.Responses[0].GetResponseRange(); rs != nil && len(rs.Kvs) == 1 {
			held.Holder, held.Token = string(rs.Kvs[0].Value), uint64(rs.Kvs[0].CreateRevision)
		}
		return Grant{}, fmt.Errorf("acquiring etcd lease %s for %s: %w", e.key, holder, held)
	}
	return Grant{Holder: holder, Token: uint64(txn.Header.Revision), TTL: time.Duration(lease.TTL) * time.Second,
		Acquired: sent, Renewed: sent, handle: strconv.FormatInt(int64(lease.ID), 10)}, nil
}

// revoke drops a lease we do not need, best effort; it expires anyway.
func (e *Etcd) revoke(cli *clientv3.Client, id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = cli.Revoke(ctx, id)
}

func (e *Etcd) Renew(ctx context.Context, g Grant) (Grant, error) {
	sent := e.clock.Now()
	cli, err := e.client()
	if err != nil {
		return g, fmt.Errorf("renewing etcd lease: %w", err)
	}
	out, err := e.renew(ctx, cli, sent, g)
	e.unanswered(cli, err)
	return out, err
}

func (e *Etcd) renew(ctx context.Context, cli *clientv3.Client, sent time.Time, g Grant) (Grant, error) {
	id, err := strconv.ParseInt(g.handle, 10, 64)
	if err != nil {
		return g, fmt.Errorf("renewing etcd lease %s: grant has no lease id: %w", e.key, ErrLost)
	}
	ka, err := cli.KeepAliveOnce(ctx, clientv3.LeaseID(id))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return g, lost("renewing etcd lease %s for %s: lease %x expired", e.key, g.Holder, id)
	}
	if err != nil {
		return g, fmt.Errorf("renewing etcd lease %s: %w", e.key, err)
	}
	// The lease lives; check the key is still ours (nobody deleted it).
	get, err := cli.Get(ctx, e.key)
	if err != nil {
		return g, fmt.Errorf("renewing etcd lease %s: reading holder: %w", e.key, err)
	}
	if len(get.Kvs) != 1 || get.Kvs[0].Lease != id || uint64(get.Kvs[0].CreateRevision) != g.Token {
		return g, lost("renewing etcd lease %s for %s: key no longer held by token %d", e.key, g.Holder, g.Token)
	}
	g.TTL = time.Duration(ka.TTL) * time.Second
	g.Renewed = sent
	return g, nil
}

func (e *Etcd) Release(ctx context.Context, g Grant) error {
	id, err := strconv.ParseInt(g.handle, 10, 64)
	if err != nil {
		return fmt.Errorf("releasing etcd lease %s: grant has no lease id", e.key)
	}
	cli, err := e.client()
	if err != nil {
		return fmt.Errorf("releasing etcd lease: %w", err)
	}
	// Revoking our own lease deletes only keys attached to it.
	_, err = cli.Revoke(ctx, clientv3.LeaseID(id))
	e.unanswered(cli, err)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("releasing etcd lease %s: %w", e.key, err)
	}
	return nil
}

func (e *Etcd) Holder(ctx context.Context) (string, uint64, error) {
	cli, err := e.client()
	if err != nil {
		return "", 0, fmt.Errorf("reading etcd lease: %w", err)
	}
	get, err := cli.Get(ctx, e.key)
	e.unanswered(cli, err)
	if err != nil {
		return "", 0, fmt.Errorf("reading etcd lease %s: %w", e.key, err)
	}
	if len(get.Kvs) != 1 {
		return "", 0, nil
	}
	return string(get.Kvs[0].Value), uint64(get.Kvs[0].CreateRevision), nil
}
