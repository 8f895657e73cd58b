package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"github.com/batonha/baton/internal/clock"
)

// Azure Blob lease limits: a fixed lease lasts 15 to 60 seconds.
const (
	AzureMinTTL = 15 * time.Second
	AzureMaxTTL = 60 * time.Second
)

// Blob metadata keys holding the lease record.
const (
	metaHolder = "batonholder"
	metaToken  = "batontoken"
)

// AzureBlob is the witness on an Azure Storage blob lease. Azure expires
// the lease on its own clock; a fixed lease lasts 15 to 60 whole seconds.
// Each node uses a lease ID derived from its name, so a node that
// restarts while its lease is live gets it back. The holder and the
// fencing token live in the blob's metadata; a new holder increments the
// token with a metadata write that carries its lease ID and the ETag it
// read, so only the lease holder can move it on.
type AzureBlob struct {
	blob  *blockblob.Client
	name  string
	clock clock.Clock
}

// NewAzureBlob returns the witness on blob name in c. The container must
// exist; the blob is created empty on first use.
func NewAzureBlob(c *container.Client, name string, clk clock.Clock) (*AzureBlob, error) {
	if c == nil || name == "" {
		return nil, errors.New("creating Azure Blob witness: container client and blob name are required")
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &AzureBlob{blob: c.NewBlockBlobClient(name), name: name, clock: clk}, nil
}

// LeaseID is the Azure lease ID a holder uses: a GUID derived from its
// name.
func LeaseID(holder string) string {
	h := sha256.Sum256([]byte("baton witness lease\x00" + holder))
	h[6] = h[6]&0x0f | 0x50 // name-based GUID
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func (a *AzureBlob) leaseClient(id string) (*lease.BlobClient, error) {
	return lease.NewBlobClient(a.blob, &lease.BlobClientOptions{LeaseID: to.Ptr(id)})
}

func azureTTL(ttl time.Duration) (int32, error) {
	s := ttlSeconds(ttl)
	if s < int64(AzureMinTTL/time.Second) || s > int64(AzureMaxTTL/time.Second) {
		return 0, fmt.Errorf("lease time %v is outside Azure's %v..%v", ttl, AzureMinTTL, AzureMaxTTL)
	}
	return int32(s), nil
}

func (a *AzureBlob) Acquire(ctx context.Context, holder string, ttl time.Duration) (Grant, error) {
	if holder == "" {
		return Grant{}, fmt.Errorf("acquiring Azure blob lease %s: holder is empty", a.name)
	}
	secs, err := azureTTL(ttl)
	if err != nil {
		return Grant{}, fmt.Errorf("acquiring Azure blob lease %s: %w", a.name, err)
	}
	id := LeaseID(holder)
	lc, err := a.leaseClient(id)
	if err != nil {
		return Grant{}, fmt.Errorf("acquiring Azure blob lease %s: %w", a.name, err)
	}
	sent := a.clock.Now()
	_, err = lc.AcquireLease(ctx, secs, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		if err := a.create(ctx); err != nil {
			return Grant{}, err
		}
		sent = a.clock.Now()
		_, err = lc.AcquireLease(ctx, secs, nil)
	}
	if bloberror.HasCode(err, bloberror.LeaseAlreadyPresent, bloberror.LeaseIsBreakingAndCannotBeAcquired) {
		held := &HeldError{}
		if rec, _, err := a.read(ctx); err == nil {
			held.Holder, held.Token = rec.holder, rec.token
		}
		return Grant{}, fmt.Errorf("acquiring Azure blob lease %s for %s: %w", a.name, holder, held)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("acquiring Azure blob lease %s: %w", a.name, err)
	}
	// We hold the lease. Keep the token if the record already names us
	// (nobody held the lease in between); otherwise move it on.
	rec, etag, err := a.read(ctx)
	if err != nil {
		return Grant{}, fmt.Errorf("acquiring Azure blob lease %s: %w", a.name, err)
	}
	g := Grant{Holder: holder, Token: rec.token, TTL: time.Duration(secs) * time.Second, Acquired: sent, Renewed: sent, handle: id}
	if rec.holder == holder && rec.token > 0 {
		return g, nil
	}
	g.Token = rec.token + 1
	_, err = a.blob.SetMetadata(ctx, map[string]*string{
		metaHolder: to.Ptr(holder),
		metaToken:  to.Ptr(strconv.FormatUint(g.Token, 10)),
	}, &blob.SetMetadataOptions{AccessConditions: &blob.AccessConditions{
		LeaseAccessConditions:    &blob.LeaseAccessConditions{LeaseID: to.Ptr(id)},
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: etag},
	}})
	if err != nil {
		return Grant{}, fmt.Errorf("acquiring Azure blob lease %s: recording token %d: %w", a.name, g.Token, err)
	}
	return g, nil
}

// create makes the empty blob, unless it exists.
func (a *AzureBlob) create(ctx context.Context) error {
	_, err := a.blob.Upload(ctx, streaming.NopCloser(bytes.NewReader(nil)), &blockblob.UploadOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}},
	})
	if err != nil && !bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet, bloberror.LeaseIDMissing) {
		return fmt.Errorf("creating witness blob %s: %w", a.name, err)
	}
	return nil
}

// read returns the lease record from the blob's metadata and its ETag,
// and whether a lease is on the blob (leased or breaking).
func (a *AzureBlob) read(ctx context.Context) (leaseRecord, *azcore.ETag, error) {
	p, err := a.blob.GetProperties(ctx, nil)
	if err != nil {
		return leaseRecord{}, nil, fmt.Errorf("reading witness blob %s: %w", a.name, err)
	}
	rec, err := parseMetadata(p.Metadata)
	if err != nil {
		return leaseRecord{}, nil, fmt.Errorf("reading witness blob %s: %w", a.name, err)
	}
	if p.LeaseState != nil {
		switch s := string(*p.LeaseState); s {
		case "leased", "breaking":
		default:
			rec.expires = -1 // marks "no live lease" for Holder
		}
	}
	return rec, p.ETag, nil
}

// parseMetadata decodes the lease record; the service may change the
// case of metadata keys.
func parseMetadata(md map[string]*string) (leaseRecord, error) {
	var holder, token string
	for k, v := range md {
		if v == nil {
			continue
		}
		switch strings.ToLower(k) {
		case metaHolder:
			holder = *v
		case metaToken:
			token = *v
		}
	}
	return parseRecord(holder, token, "")
}

// lostCodes are the answers that mean a lease ID no longer holds the lease.
var lostCodes = []bloberror.Code{
	bloberror.LeaseIDMismatchWithLeaseOperation, bloberror.LeaseNotPresentWithLeaseOperation,
	bloberror.LeaseIsBrokenAndCannotBeRenewed, bloberror.LeaseLost, bloberror.BlobNotFound,
}

func (a *AzureBlob) Renew(ctx context.Context, g Grant) (Grant, error) {
	lc, err := a.leaseClient(g.handle)
	if err != nil {
		return g, fmt.Errorf("renewing Azure blob lease %s: %w", a.name, err)
	}
	sent := a.clock.Now()
	_, err = lc.RenewLease(ctx, nil)
	if bloberror.HasCode(err, lostCodes...) {
		return g, fmt.Errorf("renewing Azure blob lease %s for %s token %d: %w: %w", a.name, g.Holder, g.Token, ErrLost, err)
	}
	if err != nil {
		return g, fmt.Errorf("renewing Azure blob lease %s: %w", a.name, err)
	}
	g.Renewed = sent
	return g, nil
}

func (a *AzureBlob) Release(ctx context.Context, g Grant) error {
	lc, err := a.leaseClient(g.handle)
	if err != nil {
		return fmt.Errorf("releasing Azure blob lease %s: %w", a.name, err)
	}
	_, err = lc.ReleaseLease(ctx, nil)
	if err != nil && !bloberror.HasCode(err, lostCodes...) {
		return fmt.Errorf("releasing Azure blob lease %s: %w", a.name, err)
	}
	return nil
}

// Break ends the current lease, whoever holds it, at the moment it would
// have expired anyway: the holder can no longer renew it, so its Keeper
// reports Lost at once, and another node can acquire it once the lease
// time it last renewed for has run out. This is the safe forced takeover
// (an operator's switchover while the active node still reaches the
// witness): a shorter break period could end the lease while the holder
// still believes it holds it, so none is offered.
func (a *AzureBlob) Break(ctx context.Context) error {
	lc, err := a.leaseClient(LeaseID("break"))
	if err != nil {
		return fmt.Errorf("breaking Azure blob lease %s: %w", a.name, err)
	}
	_, err = lc.BreakLease(ctx, &lease.BlobBreakOptions{BreakPeriod: to.Ptr(int32(AzureMaxTTL / time.Second))})
	if err != nil && !bloberror.HasCode(err, bloberror.LeaseNotPresentWithLeaseOperation, bloberror.LeaseAlreadyBroken) {
		return fmt.Errorf("breaking Azure blob lease %s: %w", a.name, err)
	}
	return nil
}

func (a *AzureBlob) Holder(ctx context.Context) (string, uint64, error) {
	rec, _, err := a.read(ctx)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	if rec.expires < 0 || rec.holder == "" {
		return "", 0, nil
	}
	return rec.holder, rec.token, nil
}
