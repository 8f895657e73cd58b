package witness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/batonha/baton/internal/clock"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Witness types.
const (
	TypeEtcd      = "etcd"
	TypeAzureBlob = "azureblob"
	TypeDynamoDB  = "dynamodb"
)

// Defaults.
const (
	DefaultEtcdTTL        = 5 * time.Second
	DefaultDynamoTTL      = 5 * time.Second
	DefaultAzureTTL       = AzureMinTTL
	DefaultDriftMargin    = 500 * time.Millisecond
	DefaultStepDown       = 500 * time.Millisecond
	DefaultEtcdKey        = "/baton/witness"
	DefaultBlob           = "baton-witness"
	DefaultDynamoKey      = "baton"
	DefaultClockSkew      = time.Second
	DefaultDialTimeout    = 2 * time.Second
	DefaultRequestTimeout = 300 * time.Millisecond
	CredentialDefault     = "default"
	CredentialSharedKey   = "shared_key"
)

// Config is the `witness:` section of baton.yaml. Both nodes of a pair
// must name the same witness (and the same key, blob or item).
type Config struct {
	// Type is etcd, azureblob or dynamodb.
	Type string `yaml:"type"`
	// TTL is the lease time. Default 5s for etcd (whole seconds) and
	// dynamodb, 15s for azureblob (which allows 15s..60s). A standby takes
	// over from a node that died holding the lease at most TTL later.
	TTL time.Duration `yaml:"ttl"`
	// DriftMargin allows for clock-rate differences and late or early
	// expiry at the witness. Default 500ms.
	DriftMargin time.Duration `yaml:"drift_margin"`
	// StepDown is the time reserved for leaving ACTIVE before the lease
	// may be gone. Default 500ms.
	StepDown time.Duration `yaml:"step_down"`
	// RequestTimeout bounds each request to the witness, so that a request
	// lost in an outage is given up and sent again on a fresh connection
	// soon after the witness is back. Default 300ms; at most the time left
	// before the lease must be renewed.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Insecure allows plain http:// endpoints (etcd, Azure Blob, DynamoDB)
	// and with them credentials sent in clear: emulators and labs only.
	Insecure  bool            `yaml:"insecure"`
	Etcd      EtcdConfig      `yaml:"etcd"`
	AzureBlob AzureBlobConfig `yaml:"azureblob"`
	DynamoDB  DynamoDBConfig  `yaml:"dynamodb"`
}

// EtcdConfig locates the etcd cluster.
type EtcdConfig struct {
	Endpoints   []string      `yaml:"endpoints"`    // required: https://host:2379 ...
	Key         string        `yaml:"key"`          // default /baton/witness
	DialTimeout time.Duration `yaml:"dial_timeout"` // default 2s
	CAFile      string        `yaml:"ca_file"`      // TLS: CA bundle for the server certificates
	CertFile    string        `yaml:"cert_file"`    // TLS client certificate (with key_file)
	KeyFile     string        `yaml:"key_file"`
}

// AzureBlobConfig locates the blob.
type AzureBlobConfig struct {
	AccountURL string `yaml:"account_url"` // required: https://ACCOUNT.blob.core.windows.net
	Container  string `yaml:"container"`   // required; must exist
	Blob       string `yaml:"blob"`        // default baton-witness; created on first use
	// Credential is "default" (managed identity, environment, Azure CLI:
	// azidentity's default chain) or "shared_key" (account key read from
	// KeyFile; AccountName defaults to the first label of the URL host).
	Credential  string `yaml:"credential"`
	AccountName string `yaml:"account_name"`
	KeyFile     string `yaml:"key_file"`
}

// DynamoDBConfig locates the item.
type DynamoDBConfig struct {
	Region   string `yaml:"region"`   // default: the SDK's (environment, instance metadata)
	Endpoint string `yaml:"endpoint"` // optional endpoint override (VPC endpoint, tests)
	Table    string `yaml:"table"`    // required; partition key "id" (string)
	Key      string `yaml:"key"`      // the item's id, default "baton"
	// ClockSkew is how far the nodes' wall clocks may disagree: a lease
	// counts as expired only this long after its recorded expiry. Default 1s.
	ClockSkew time.Duration `yaml:"clock_skew"`
}

// SetDefaults fills in defaults on a fresh section (config.Defaulter). The
// TTL default depends on the type and is applied by LeaseTTL.
func (c *Config) SetDefaults() {
	c.DriftMargin = DefaultDriftMargin
	c.StepDown = DefaultStepDown
	c.RequestTimeout = DefaultRequestTimeout
	c.Etcd.Key = DefaultEtcdKey
	c.Etcd.DialTimeout = DefaultDialTimeout
	c.AzureBlob.Blob = DefaultBlob
	c.AzureBlob.Credential = CredentialDefault
	c.DynamoDB.Key = DefaultDynamoKey
	c.DynamoDB.ClockSkew = DefaultClockSkew
}

// LeaseTTL is the lease time: TTL, or the type's default when unset.
func (c Config) LeaseTTL() time.Duration {
	if c.TTL != 0 {
		return c.TTL
	}
	switch c.Type {
	case TypeAzureBlob:
		return DefaultAzureTTL
	case TypeDynamoDB:
		return DefaultDynamoTTL
	default:
		return DefaultEtcdTTL
	}
}

// Check reports every problem with a key relative to the section
// (config.Checker).
func (c *Config) Check(report func(key, msg string)) {
	ttl := c.LeaseTTL()
	switch {
	case ttl < 0:
		report("ttl", "must be positive")
	case c.DriftMargin < 0:
		report("drift_margin", "must not be negative")
	case c.StepDown < 0:
		report("step_down", "must not be negative")
	case c.RequestTimeout < 0:
		report("request_timeout", "must not be negative")
	case c.DriftMargin+c.StepDown > ttl/2:
		report("ttl", fmt.Sprintf("%v is too short: drift_margin + step_down (%v) must be at most half of it", ttl, c.DriftMargin+c.StepDown))
	}
	switch c.Type {
	case TypeEtcd:
		if ttl%time.Second != 0 {
			report("ttl", "etcd leases last whole seconds")
		}
		if len(c.Etcd.Endpoints) == 0 {
			report("etcd.endpoints", "at least one endpoint is required")
		}
		schemes := map[string]bool{}
		for i, e := range c.Etcd.Endpoints {
			key := fmt.Sprintf("etcd.endpoints[%d]", i)
			u, err := url.Parse(e)
			switch {
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				report(key, fmt.Sprintf("%q is not an https://host:port URL", e))
			case u.Scheme == "http" && !c.Insecure:
				report(key, fmt.Sprintf("%q is plaintext: use https:// (with ca_file, cert_file, key_file), or set witness.insecure: true for a lab", e))
			default:
				schemes[u.Scheme] = true
			}
		}
		if len(schemes) > 1 {
			report("etcd.endpoints", "mixes http:// and https:// endpoints")
		}
		if c.Etcd.Key == "" {
			report("etcd.key", "is required")
		}
		if (c.Etcd.CertFile == "") != (c.Etcd.KeyFile == "") {
			report("etcd.cert_file", "cert_file and key_file go together")
		}
	case TypeAzureBlob:
		if _, err := azureTTL(ttl); err != nil {
			report("ttl", err.Error())
		}
		if u, err := url.Parse(c.AzureBlob.AccountURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			report("azureblob.account_url", fmt.Sprintf("%q is not an https:// URL", c.AzureBlob.AccountURL))
		} else if u.Scheme == "http" && !c.Insecure {
			report("azureblob.account_url", fmt.Sprintf("%q is plaintext: the credential would travel in clear; use https://, or set witness.insecure: true for an emulator", c.AzureBlob.AccountURL))
		}
		if c.AzureBlob.Container == "" {
			report("azureblob.container", "is required")
		}
		if c.AzureBlob.Blob == "" {
			report("azureblob.blob", "is required")
		}
		switch c.AzureBlob.Credential {
		case CredentialDefault:
		case CredentialSharedKey:
			if c.AzureBlob.KeyFile == "" {
				report("azureblob.key_file", "is required with credential shared_key")
			}
		default:
			report("azureblob.credential", fmt.Sprintf("%q is not default or shared_key", c.AzureBlob.Credential))
		}
	case TypeDynamoDB:
		if ttl%time.Millisecond != 0 {
			report("ttl", "DynamoDB expiry is kept in whole milliseconds")
		}
		if e := c.DynamoDB.Endpoint; e != "" {
			if u, err := url.Parse(e); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				report("dynamodb.endpoint", fmt.Sprintf("%q is not an https:// URL", e))
			} else if u.Scheme == "http" && !c.Insecure {
				report("dynamodb.endpoint", fmt.Sprintf("%q is plaintext: use https://, or set witness.insecure: true for an emulator", e))
			}
		}
		if c.DynamoDB.Table == "" {
			report("dynamodb.table", "is required")
		}
		if c.DynamoDB.Key == "" {
			report("dynamodb.key", "is required")
		}
		if c.DynamoDB.ClockSkew < 0 {
			report("dynamodb.clock_skew", "must not be negative")
		}
	default:
		report("type", fmt.Sprintf("%q is not etcd, azureblob or dynamodb", c.Type))
	}
}

// Options are what New needs beside the configuration.
type Options struct {
	Clock  clock.Clock  // nil: clock.Real
	Logger *slog.Logger // nil: discard
}

// New connects to the configured witness. The backend it returns also
// implements io.Closer; close it when done.
func New(ctx context.Context, cfg Config, opts Options) (Backend, error) {
	var problems []string
	cfg.Check(func(key, msg string) { problems = append(problems, "witness."+key+": "+msg) })
	if len(problems) > 0 {
		return nil, fmt.Errorf("creating witness: %s", strings.Join(problems, "; "))
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	switch cfg.Type {
	case TypeEtcd:
		return newEtcdFromConfig(cfg.Etcd, clk)
	case TypeAzureBlob:
		return newAzureFromConfig(cfg.AzureBlob, cfg.Insecure, clk)
	case TypeDynamoDB:
		return newDynamoFromConfig(ctx, cfg.DynamoDB, clk)
	}
	return nil, fmt.Errorf("creating witness: unknown type %q", cfg.Type)
}

// KeeperConfig returns the Keeper settings for this witness.
func (c Config) KeeperConfig(node string, b Backend, clk clock.Clock, log *slog.Logger) KeeperConfig {
	return KeeperConfig{Node: node, TTL: c.LeaseTTL(), DriftMargin: c.DriftMargin, StepDown: c.StepDown,
		RequestTimeout: c.RequestTimeout, Backend: b, Clock: clk, Logger: log}
}

func newEtcdFromConfig(c EtcdConfig, clk clock.Clock) (*Etcd, error) {
	// The client's own log is off: every failure comes back as an error
	// that the Keeper logs with what it was doing. Connection attempts are
	// short and retried quickly: the Keeper bounds every request, and a
	// witness that is back must be reached at once.
	cc := clientv3.Config{Endpoints: c.Endpoints, Logger: zap.NewNop(), DialOptions: []grpc.DialOption{
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 250 * time.Millisecond},
			MinConnectTimeout: min(max(c.DialTimeout, 50*time.Millisecond), 250*time.Millisecond),
		}),
	}}
	if strings.HasPrefix(c.Endpoints[0], "https://") {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("creating etcd witness: reading CA file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("creating etcd witness: no certificate in %s", c.CAFile)
			}
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("creating etcd witness: loading client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cc.TLS = tc
	}
	dial := func() (*clientv3.Client, error) {
		cli, err := clientv3.New(cc) // no DialTimeout: New does not wait for the connection
		if err != nil {
			return nil, fmt.Errorf("creating etcd witness client for %v: %w", c.Endpoints, err)
		}
		return cli, nil
	}
	return NewEtcd(dial, c.Key, clk)
}

func newAzureFromConfig(c AzureBlobConfig, insecure bool, clk clock.Clock) (*AzureBlob, error) {
	containerURL := strings.TrimRight(c.AccountURL, "/") + "/" + c.Container
	var opts *container.ClientOptions
	if insecure && strings.HasPrefix(c.AccountURL, "http://") {
		opts = &container.ClientOptions{}
		opts.InsecureAllowCredentialWithHTTP = true // witness.insecure: Check refuses http:// without it
	}
	var cc *container.Client
	switch c.Credential {
	case CredentialSharedKey:
		key, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("creating Azure Blob witness: reading key file: %w", err)
		}
		name := c.AccountName
		if name == "" {
			name = accountName(c.AccountURL)
		}
		cred, err := container.NewSharedKeyCredential(name, strings.TrimSpace(string(key)))
		if err != nil {
			return nil, fmt.Errorf("creating Azure Blob witness: shared key for %s: %w", name, err)
		}
		if cc, err = container.NewClientWithSharedKeyCredential(containerURL, cred, opts); err != nil {
			return nil, fmt.Errorf("creating Azure Blob witness client: %w", err)
		}
	default:
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("creating Azure Blob witness: default credential: %w", err)
		}
		if cc, err = container.NewClient(containerURL, cred, opts); err != nil {
			return nil, fmt.Errorf("creating Azure Blob witness client: %w", err)
		}
	}
	return NewAzureBlob(cc, c.Blob, clk)
}

// accountName is the storage account in an account URL: the first label
// of the host, or the first path element for emulators (127.0.0.1:10000/devstoreaccount1).
func accountName(accountURL string) string {
	u, err := url.Parse(accountURL)
	if err != nil {
		return ""
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		name, _, _ := strings.Cut(p, "/")
		return name
	}
	name, _, _ := strings.Cut(u.Hostname(), ".")
	return name
}

// Close is a no-op: the Azure client holds no connections to close.
func (a *AzureBlob) Close() error { return nil }

// Close is a no-op: the DynamoDB client holds no connections to close.
func (d *DynamoDB) Close() error { return nil }

func newDynamoFromConfig(ctx context.Context, c DynamoDBConfig, clk clock.Clock) (*DynamoDB, error) {
	var lo []func(*awsconfig.LoadOptions) error
	if c.Region != "" {
		lo = append(lo, awsconfig.WithRegion(c.Region))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("creating DynamoDB witness: loading AWS configuration: %w", err)
	}
	if ac.Region == "" {
		return nil, errors.New("creating DynamoDB witness: no region configured")
	}
	api := dynamodb.NewFromConfig(ac, func(o *dynamodb.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.RetryMaxAttempts = 2 // the Keeper retries on its own schedule
	})
	return NewDynamoDB(api, c.Table, c.Key, c.ClockSkew, clk)
}
