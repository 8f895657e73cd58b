package peerings

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/witness"
)

// LeaseSuffix names the peerings writer's lease beside the role lease:
// the witness key, blob or item name + LeaseSuffix.
const LeaseSuffix = "-peerings"

// WitnessLeader elects one writer among reconcilers sharing a witness:
// the holder of the second lease (wc's key, blob or item + LeaseSuffix),
// held as holder. It keeps the lease until ctx ends.
func WitnessLeader(ctx context.Context, wc witness.Config, holder string, clk clock.Clock, log *slog.Logger) (Leader, error) {
	wc.Etcd.Key += LeaseSuffix
	wc.AzureBlob.Blob += LeaseSuffix
	wc.DynamoDB.Key += LeaseSuffix
	b, err := witness.New(ctx, wc, witness.Options{Clock: clk, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("connecting to the witness for peerings leader election: %w", err)
	}
	k, err := witness.NewKeeper(wc.KeeperConfig(holder, b, clk, log))
	if err != nil {
		return nil, fmt.Errorf("peerings leader election: %w", err)
	}
	go func() {
		if err := k.Run(ctx); err != nil {
			log.Error("peerings leader lease stopped", "err", err)
		}
	}()
	go func() { // the keeper waits for its events to be read
		for {
			select {
			case ev := <-k.Events():
				log.Info("peerings leader lease", "event", fmt.Sprintf("%T", ev))
			case <-ctx.Done():
				return
			}
		}
	}()
	k.Want(true)
	return keeperLeader{k}, nil
}

type keeperLeader struct{ k *witness.Keeper }

func (l keeperLeader) Leading(context.Context) bool { return l.k.Status().Holding }
