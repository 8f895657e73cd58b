package witness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/batonha/baton/internal/lab/labtest"
)

// Azurite's well-known development account.
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// startAzurite runs Azurite's blob service on a free port and returns the
// account URL. Azurite is installed by `npm ci --prefix
// internal/witness/testdata/azurite` (or found in $AZURITE_DIR).
func startAzurite(t *testing.T) string {
	node := labtest.RequireTool(t, "node")
	dir := os.Getenv("AZURITE_DIR")
	if dir == "" {
		dir, _ = filepath.Abs("testdata/azurite")
	}
	main := filepath.Join(dir, "node_modules/azurite/dist/src/blob/main.js")
	if _, err := os.Stat(main); err != nil {
		labtest.Require(t, "Azurite missing (npm ci --prefix internal/witness/testdata/azurite): "+err.Error())
	}
	port := freePort(t)
	startServer(t, port, node, main, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose",
	)
	return fmt.Sprintf("http://127.0.0.1:%d/%s", port, azuriteAccount)
}

// newAzurePair returns two clients ("nodes") of one blob in a new container.
func newAzurePair(t *testing.T, accountURL, blob string) (*AzureBlob, *AzureBlob) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(azuriteKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Type: TypeAzureBlob}
	cfg.SetDefaults()
	cfg.Insecure = true // the test servers speak plain HTTP
	cfg.AzureBlob.AccountURL = accountURL
	cfg.AzureBlob.Container = "witness-" + blob
	cfg.AzureBlob.Blob = blob
	cfg.AzureBlob.Credential = CredentialSharedKey
	cfg.AzureBlob.KeyFile = keyFile
	ctx := context.Background()
	cred, err := container.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	opts := &container.ClientOptions{}
	opts.InsecureAllowCredentialWithHTTP = true
	cc, err := container.NewClientWithSharedKeyCredential(accountURL+"/"+cfg.AzureBlob.Container, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Create(ctx, nil); err != nil {
		t.Fatalf("creating container: %v", err)
	}
	a, err := New(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a.(*AzureBlob), b.(*AzureBlob)
}

func TestAzureBlob(t *testing.T) {
	url := startAzurite(t)
	t.Run("contract", func(t *testing.T) {
		t.Parallel()
		a, b := newAzurePair(t, url, "contract")
		contract{a: a, b: b, ttl: AzureMinTTL, slack: time.Second}.run(t)
	})
	t.Run("break", func(t *testing.T) {
		t.Parallel()
		testAzureBreak(t, url)
	})
	t.Run("restart keeps lease", func(t *testing.T) {
		t.Parallel()
		a, b := newAzurePair(t, url, "restart")
		ctx := context.Background()
		g, err := a.Acquire(ctx, "a", AzureMinTTL)
		if err != nil {
			t.Fatal(err)
		}
		// A restarted node has lost its grant but not its lease: it
		// acquires again through the other client, with the same token.
		g2, err := b.Acquire(ctx, "a", AzureMinTTL)
		if err != nil || g2.Token != g.Token {
			t.Fatalf("re-acquire after restart: %+v %v (token was %d)", g2, err, g.Token)
		}
		if _, err := a.Renew(ctx, g); err != nil {
			t.Fatalf("renewing the original grant: %v", err)
		}
	})
}

func testAzureBreak(t *testing.T, url string) {
	a, b := newAzurePair(t, url, "break")
	ctx := context.Background()
	ga, err := a.Acquire(ctx, "a", AzureMinTTL)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if ga, err = a.Renew(ctx, ga); err != nil {
		t.Fatal(err)
	}
	if err := b.Break(ctx); err != nil {
		t.Fatal(err)
	}
	// The holder can no longer renew, at once...
	if _, err := a.Renew(ctx, ga); !errors.Is(err, ErrLost) {
		t.Fatalf("renew of a broken lease: %v, want ErrLost", err)
	}
	// ...but nobody gets the lease before its time has run out.
	if _, err := b.Acquire(ctx, "b", AzureMinTTL); !errors.Is(err, ErrHeld) {
		t.Fatalf("b acquires a breaking lease: %v", err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		gb, err := b.Acquire(ctx, "b", AzureMinTTL)
		if err == nil {
			if took := time.Since(sent); took < AzureMinTTL {
				t.Fatalf("b acquired %v after a's renewal, within its lease time", took)
			}
			if gb.Token <= ga.Token {
				t.Fatalf("token %d after %d", gb.Token, ga.Token)
			}
			return
		}
		if !errors.Is(err, ErrHeld) || time.Since(sent) > AzureMinTTL+10*time.Second {
			t.Fatalf("b acquires after the break: %v", err)
		}
		<-tick.C
	}
}

func TestLeaseID(t *testing.T) {
	id := LeaseID("node-a")
	if len(id) != 36 || id[14] != '5' || id == LeaseID("node-b") || id != LeaseID("node-a") {
		t.Fatalf("LeaseID = %q", id)
	}
}
