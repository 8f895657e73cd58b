package partition

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Azurite's well-known development account (public, documented by
// Microsoft for the emulator).
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	witnessName    = "baton-witness"
)

// startWitness starts the witness server in the witness namespace,
// prepares its store (DynamoDB table, blob container) and returns the
// witness section for the nodes' configuration.
func (c *Cluster) startWitness(ctx context.Context) (string, error) {
	o := c.Opts
	dir := filepath.Join(o.Dir, "witness")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating witness directory: %w", err)
	}
	logPath := filepath.Join(dir, o.Witness+".log")
	switch o.Witness {
	case WitnessEtcd:
		bin, err := exec.LookPath("etcd")
		if err != nil {
			return "", fmt.Errorf("starting etcd witness: %w (install Debian's etcd-server: scripts/deps.sh test)", err)
		}
		client := fmt.Sprintf("http://%s:%d", WitnessAddr, EtcdPort)
		peer := "http://127.0.0.1:2380"
		c.witnessArgv = []string{bin, "--name", "witness", "--data-dir", filepath.Join(dir, "etcd"),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "witness=" + peer, "--log-level", "warn"}
		c.witnessLog, c.witnessHealth = logPath, client+"/health"
		if err := c.StartWitness(ctx); err != nil {
			return "", err
		}
		return c.witnessYAML(fmt.Sprintf("  etcd:\n    endpoints: [%q]\n    dial_timeout: 1s\n", client)), nil

	case WitnessDynamoDB:
		bin, err := exec.LookPath("moto_server")
		if err != nil {
			return "", fmt.Errorf("starting DynamoDB witness: %w (moto_server is on the machine image: pip install 'moto[server]')", err)
		}
		url := fmt.Sprintf("http://%s:%d", WitnessAddr, MotoPort)
		if _, err := c.Witness.Start("moto", []string{bin, "-H", WitnessAddr, "-p", fmt.Sprint(MotoPort)}, nil, logPath); err != nil {
			return "", err
		}
		if err := c.waitHTTP(ctx, "moto_server", url+"/moto-api/", 30*time.Second); err != nil {
			return "", err
		}
		c.env = []string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true"}
		db := dynamodb.New(dynamodb.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(url),
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
			}),
			HTTPClient: &http.Client{Transport: &http.Transport{DialContext: c.clientDial}},
		})
		_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(witnessName),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		if err != nil {
			return "", fmt.Errorf("creating DynamoDB table %s in moto: %w", witnessName, err)
		}
		// The nodes share this machine's clock: a small skew allowance.
		return c.witnessYAML(fmt.Sprintf("  dynamodb:\n    region: us-east-1\n    endpoint: %q\n    table: %q\n    clock_skew: 100ms\n",
			url, witnessName)), nil

	case WitnessAzureBlob:
		adir := o.AzuriteDir
		if adir == "" {
			root, err := repoRoot()
			if err != nil {
				return "", err
			}
			adir = filepath.Join(root, "internal/witness/testdata/azurite")
		}
		main := filepath.Join(adir, "node_modules/azurite/dist/src/blob/main.js")
		if _, err := os.Stat(main); err != nil {
			return "", fmt.Errorf("starting Azure Blob witness: %w (run scripts/deps.sh test: npm ci in %s)", err, adir)
		}
		node, err := exec.LookPath("node")
		if err != nil {
			return "", fmt.Errorf("starting Azure Blob witness: %w (install nodejs)", err)
		}
		_, err = c.Witness.Start("azurite", []string{node, main, "--blobHost", WitnessAddr, "--blobPort", fmt.Sprint(AzuritePort),
			"--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"}, nil, logPath)
		if err != nil {
			return "", err
		}
		account := fmt.Sprintf("http://%s:%d/%s", WitnessAddr, AzuritePort, azuriteAccount)
		if err := c.waitHTTP(ctx, "azurite", account+"?comp=list", 30*time.Second); err != nil {
			return "", err
		}
		keyFile := filepath.Join(dir, "azure.key")
		if err := os.WriteFile(keyFile, []byte(azuriteKey+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("writing the Azurite key file: %w", err)
		}
		cred, err := container.NewSharedKeyCredential(azuriteAccount, azuriteKey)
		if err != nil {
			return "", fmt.Errorf("azurite credential: %w", err)
		}
		opts := &container.ClientOptions{}
		opts.InsecureAllowCredentialWithHTTP = true
		opts.Transport = &http.Client{Transport: &http.Transport{DialContext: c.clientDial}}
		cc, err := container.NewClientWithSharedKeyCredential(account+"/"+witnessName, cred, opts)
		if err != nil {
			return "", fmt.Errorf("azurite container client: %w", err)
		}
		if _, err := cc.Create(ctx, nil); err != nil {
			return "", fmt.Errorf("creating container %s in Azurite: %w", witnessName, err)
		}
		return c.witnessYAML(fmt.Sprintf("  azureblob:\n    account_url: %q\n    container: %q\n    credential: shared_key\n    key_file: %q\n",
			account, witnessName, keyFile)), nil
	}
	return "", fmt.Errorf("starting witness: unknown type %q", o.Witness)
}

// CanRestartWitness reports whether the witness server keeps its state
// across a restart (etcd's data directory; moto and Azurite here keep
// theirs in memory, so a restart would be a witness losing its data).
func (c *Cluster) CanRestartWitness() bool { return c.witnessArgv != nil }

// StartWitness starts the witness server (again, after KillWitness) and
// waits until it answers.
func (c *Cluster) StartWitness(ctx context.Context) error {
	if c.witnessArgv == nil {
		return fmt.Errorf("restarting the %s witness: it keeps its state in memory", c.Opts.Witness)
	}
	p, err := c.Witness.Start(c.Opts.Witness, c.witnessArgv, nil, c.witnessLog)
	if err != nil {
		return err
	}
	c.witnessProc = p
	return c.waitHTTP(ctx, c.Opts.Witness, c.witnessHealth, 20*time.Second)
}

// KillWitness SIGKILLs the witness server and waits until it has exited.
func (c *Cluster) KillWitness() error {
	p := c.witnessProc
	if p == nil || p.Exited() {
		return nil
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.Done():
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("killing the witness (pid %d): still running", p.PID)
	}
}

// repoRoot finds the module root (the directory holding go.mod) from the
// working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("finding the repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}
