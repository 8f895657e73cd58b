package partition

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab/labtest"
)

var (
	seed      = flag.Int64("partition.seed", 8, "schedule seed of the reduced run")
	trials    = flag.Int("partition.trials", 5, "trials per witness in the reduced run")
	withAzure = flag.Bool("partition.azure", false, "also run the Azure Blob witness (15s minimum lease: slow)")
)

// batonBin is $E2E_BIN (make test sets it) or a binary built for the test.
func batonBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("E2E_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "baton")
	cmd := exec.Command("go", "build", "-o", out, "../../cmd/baton")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building baton: %v\n%s", err, b)
	}
	return out
}

// reducedWitnessFaults follow the seeded trials of the reduced run, so
// that each witness fault is seen once however few trials are drawn.
var reducedWitnessFaults = []Fault{
	{Kind: WitnessDown, Target: TargetActive, Dur: 3 * time.Second},
	{Kind: WitnessKill, Target: TargetActive, Dur: 2 * time.Second},
	{Kind: WitnessThenCut, Target: TargetActive, Dur: 3 * time.Second},
	{Kind: WitnessThenKill, Target: TargetActive, Dur: 3 * time.Second},
}

// TestPartitionReduced is the reduced partition suite of make test: a
// few trials per witness type (Azure Blob only with -partition.azure; its
// scenarios run in e2e.TestWitnessAzureBlob). The full run is
// `make test-partition` (bench/partition).
func TestPartitionReduced(t *testing.T) {
	labtest.RequireRoot(t)
	bin := batonBin(t)
	types := []string{WitnessEtcd, WitnessDynamoDB, WitnessNone}
	if *withAzure {
		types = append(types, WitnessAzureBlob)
	}
	for _, w := range types {
		t.Run(w, func(t *testing.T) {
			res, err := Run(context.Background(), Options{Bin: bin, Dir: t.TempDir(), Witness: w, Trials: *trials, Seed: *seed,
				Extra: reducedWitnessFaults})
			t.Log(res.Line())
			t.Log(res.Details())
			for _, l := range res.Longest(3) {
				t.Logf("no active for %s", l)
			}
			if err != nil || !res.OK() {
				for _, v := range res.Violations {
					t.Errorf("violation: %s", v)
				}
				if err != nil {
					t.Errorf("run: %v", err)
				}
				for i := range res.Trials {
					t.Logf("trial %d record: %s", i, res.Record(i))
				}
				for i, tail := range res.Tails {
					t.Logf("--- node %d log (tail) ---\n%s", i, tail)
				}
				t.Fatalf("repeat with: go test ./e2e/partition -run 'TestPartitionReduced/%s' -partition.seed %d -partition.trials %d",
					w, res.Seed, *trials)
			}
		})
	}
}
