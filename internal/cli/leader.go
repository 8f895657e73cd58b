package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/peerings"
	"github.com/batonha/baton/internal/witness"
)

// peeringsLeader elects one writer among the `baton peerings` instances:
// with a witness configured, the holder of a second lease beside the
// role lease (key, blob or item name + "-peerings"); without one, this
// instance alone (run it in one place).
func peeringsLeader(ctx context.Context, cfg *config.Config, log *slog.Logger) (peerings.Leader, error) {
	if cfg.Witness == nil {
		return peerings.Single{}, nil
	}
	wc := *cfg.Witness
	wc.Etcd.Key += "-peerings"
	wc.AzureBlob.Blob += "-peerings"
	wc.DynamoDB.Key += "-peerings"
	b, err := witness.New(ctx, wc, witness.Options{Clock: clock.Real{}, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("connecting to the witness for peerings leader election: %w", err)
	}
	k, err := witness.NewKeeper(wc.KeeperConfig(cfg.Node.Name, b, clock.Real{}, log))
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
