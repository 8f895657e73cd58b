// Package witness guards against split brain with a lease held in a third
// place both appliances can reach: an etcd cluster, an Azure Storage blob
// lease or a DynamoDB item. A node may be ACTIVE only while it holds the
// lease; every new grant carries a fencing token that only grows, so writes
// made under an older grant can be recognised and refused.
//
// Backend is the small interface each store implements (Acquire, Renew,
// Release, Holder); Fake is an in-memory one for tests. Keeper holds the
// lease for the daemon: it renews well before expiry and, when it cannot
// renew in time, reports Lost early enough that the node has stepped down
// before any other node can acquire.
//
// # Time and clocks
//
// The Keeper never compares its clock with the witness's. It measures the
// lease from the moment it SENT the acquire or renew request, on the local
// monotonic clock, and gives up DriftMargin + StepDown before the lease
// time has passed. The witness starts its own count no earlier than it
// receives the request, so as long as the two clocks run at rates that
// differ by less than DriftMargin over one lease time, the holder has
// stepped down before the witness lets anyone else in. etcd and Azure
// Storage expire leases on their own clock; DynamoDB has no server-side
// clock, so its backend writes the expiry as wall-clock time and a node
// treats a lease as expired only ClockSkew after that time on its own wall
// clock: the nodes' wall clocks must agree to within ClockSkew (use NTP or
// the cloud's time service).
package witness

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Backend is one witness store. Implementations: etcd (Etcd), Azure Blob
// lease (AzureBlob), DynamoDB (DynamoDB), and Fake.
type Backend interface {
	// Acquire takes the lease for holder if it is free or expired, or
	// renews it if holder already holds it (then the token is unchanged).
	// It returns ErrHeld (wrapped in a *HeldError naming the current
	// holder) when another node holds a live lease.
	Acquire(ctx context.Context, holder string, ttl time.Duration) (Grant, error)
	// Renew extends a grant this node holds; ErrLost (wrapped) if it no
	// longer holds it.
	Renew(ctx context.Context, g Grant) (Grant, error)
	// Release gives the lease up (best effort): another node may acquire
	// it at once.
	Release(ctx context.Context, g Grant) error
	// Holder reports the current holder and its token (for status); the
	// holder is "" and the token 0 when the lease is free.
	Holder(ctx context.Context) (holder string, token uint64, err error)
}

// Grant is a lease held by one node.
type Grant struct {
	// Holder is the node name the lease was acquired for.
	Holder string
	// Token is the fencing token: it strictly grows with every new grant
	// across all holders, and stays the same while one holder renews.
	Token uint64
	// TTL is the lease time the witness applies (it may round the
	// requested time up, never down).
	TTL time.Duration
	// Acquired is when the request that first granted this lease was sent,
	// on the backend's clock.
	Acquired time.Time
	// Renewed is when the request that last granted or renewed the lease
	// was sent, on the backend's clock.
	Renewed time.Time

	// handle is backend-specific: the etcd lease ID, the Azure lease ID.
	handle string
}

var (
	// ErrHeld means another node holds a live lease.
	ErrHeld = errors.New("lease held by another node")
	// ErrLost means the grant is no longer valid: it expired and another
	// node took the lease, or it was released or broken.
	ErrLost = errors.New("lease lost")
)

// HeldError is returned by Acquire when another node holds the lease. It
// matches ErrHeld with errors.Is.
type HeldError struct {
	Holder string // the node holding the lease ("" when the store did not say)
	Token  uint64 // its fencing token, 0 when unknown
}

func (e *HeldError) Error() string {
	if e.Holder == "" {
		return ErrHeld.Error()
	}
	return fmt.Sprintf("lease held by %s (token %d)", e.Holder, e.Token)
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// heldBy builds the error Acquire returns when holder has the lease.
func heldBy(holder string, token uint64) error {
	return &HeldError{Holder: holder, Token: token}
}

// lost wraps ErrLost with what was being done.
func lost(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrLost)
}
