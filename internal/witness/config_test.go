package witness

import (
	"context"
	"strings"
	"testing"
	"time"
)

func checkAll(c Config) map[string]string {
	got := map[string]string{}
	c.Check(func(key, msg string) { got[key] = msg })
	return got
}

func TestConfigDefaultsAndCheck(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.DriftMargin != DefaultDriftMargin || c.Etcd.Key != DefaultEtcdKey || c.AzureBlob.Credential != CredentialDefault ||
		c.DynamoDB.ClockSkew != DefaultClockSkew {
		t.Fatalf("defaults: %+v", c)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		ttl  time.Duration
		errs []string // keys reported
	}{
		{"etcd ok", func(c *Config) { c.Type = TypeEtcd; c.Etcd.Endpoints = []string{"https://10.0.0.5:2379"} }, DefaultEtcdTTL, nil},
		{"etcd no endpoints, fractional ttl", func(c *Config) { c.Type = TypeEtcd; c.TTL = 2500 * time.Millisecond }, 0, []string{"etcd.endpoints", "ttl"}},
		{"etcd bad endpoint, half tls", func(c *Config) {
			c.Type = TypeEtcd
			c.Etcd.Endpoints = []string{"10.0.0.5:2379"}
			c.Etcd.CertFile = "/x"
		}, 0, []string{"etcd.endpoints[0]", "etcd.cert_file"}},
		{"azure ok", func(c *Config) {
			c.Type = TypeAzureBlob
			c.AzureBlob.AccountURL = "https://acct.blob.core.windows.net"
			c.AzureBlob.Container = "ha"
		}, DefaultAzureTTL, nil},
		{"azure ttl too short, shared key without file", func(c *Config) {
			c.Type = TypeAzureBlob
			c.TTL = 5 * time.Second
			c.AzureBlob.AccountURL = "https://acct.blob.core.windows.net"
			c.AzureBlob.Container = "ha"
			c.AzureBlob.Credential = CredentialSharedKey
		}, 0, []string{"ttl", "azureblob.key_file"}},
		{"azure missing", func(c *Config) { c.Type = TypeAzureBlob; c.AzureBlob.Credential = "msi" }, 0,
			[]string{"azureblob.account_url", "azureblob.container", "azureblob.credential"}},
		{"dynamodb ok", func(c *Config) { c.Type = TypeDynamoDB; c.DynamoDB.Table = "t" }, DefaultDynamoTTL, nil},
		{"dynamodb no table", func(c *Config) { c.Type = TypeDynamoDB }, 0, []string{"dynamodb.table"}},
		{"margins too big", func(c *Config) {
			c.Type = TypeDynamoDB
			c.DynamoDB.Table = "t"
			c.TTL = 1500 * time.Millisecond
		}, 0, []string{"ttl"}},
		{"unknown type", func(c *Config) { c.Type = "zookeeper" }, 0, []string{"type"}},
		{"etcd plaintext", func(c *Config) { c.Type = TypeEtcd; c.Etcd.Endpoints = []string{"http://10.0.0.5:2379"} }, 0,
			[]string{"etcd.endpoints[0]"}},
		{"etcd plaintext, insecure", func(c *Config) {
			c.Type = TypeEtcd
			c.Insecure = true
			c.Etcd.Endpoints = []string{"http://10.0.0.5:2379"}
		}, DefaultEtcdTTL, nil},
		{"etcd mixed schemes", func(c *Config) {
			c.Type = TypeEtcd
			c.Insecure = true
			c.Etcd.Endpoints = []string{"http://10.0.0.5:2379", "https://10.0.0.6:2379"}
		}, 0, []string{"etcd.endpoints"}},
		{"azure plaintext", func(c *Config) {
			c.Type = TypeAzureBlob
			c.AzureBlob.AccountURL = "http://127.0.0.1:10000/devstoreaccount1"
			c.AzureBlob.Container = "ha"
		}, 0, []string{"azureblob.account_url"}},
		{"azure plaintext, insecure", func(c *Config) {
			c.Type = TypeAzureBlob
			c.Insecure = true
			c.AzureBlob.AccountURL = "http://127.0.0.1:10000/devstoreaccount1"
			c.AzureBlob.Container = "ha"
		}, DefaultAzureTTL, nil},
		{"dynamodb plaintext endpoint", func(c *Config) {
			c.Type = TypeDynamoDB
			c.DynamoDB.Table = "t"
			c.DynamoDB.Endpoint = "http://127.0.0.1:5000"
		}, 0, []string{"dynamodb.endpoint"}},
		{"negative request timeout", func(c *Config) {
			c.Type = TypeDynamoDB
			c.DynamoDB.Table = "t"
			c.RequestTimeout = -time.Second
		}, 0, []string{"request_timeout"}},
	} {
		var c Config
		c.SetDefaults()
		tc.edit(&c)
		got := checkAll(c)
		if len(got) != len(tc.errs) {
			t.Errorf("%s: reported %v, want keys %v", tc.name, got, tc.errs)
			continue
		}
		for _, k := range tc.errs {
			if got[k] == "" {
				t.Errorf("%s: no problem reported for %s (got %v)", tc.name, k, got)
			}
		}
		if tc.ttl != 0 && c.LeaseTTL() != tc.ttl {
			t.Errorf("%s: LeaseTTL = %v, want %v", tc.name, c.LeaseTTL(), tc.ttl)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(context.Background(), Config{Type: TypeEtcd}, Options{})
	if err == nil || !strings.Contains(err.Error(), "witness.etcd.endpoints") {
		t.Fatalf("New = %v", err)
	}
}

func TestKeeperConfigFromConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	c.Type = TypeAzureBlob
	kc := c.KeeperConfig("a", NewFake(nil), nil, nil)
	if kc.TTL != AzureMinTTL || kc.DriftMargin != DefaultDriftMargin || kc.StepDown != DefaultStepDown || kc.Node != "a" {
		t.Fatalf("KeeperConfig = %+v", kc)
	}
	if _, err := NewKeeper(kc); err != nil {
		t.Fatal(err)
	}
}

func TestAccountName(t *testing.T) {
	for in, want := range map[string]string{
		"https://acct.blob.core.windows.net":      "acct",
		"http://127.0.0.1:10000/devstoreaccount1": "devstoreaccount1",
	} {
		if got := accountName(in); got != want {
			t.Errorf("accountName(%q) = %q, want %q", in, got, want)
		}
	}
}
