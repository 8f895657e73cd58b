package cli

import (
	"context"
	"log/slog"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/peerings"
)

// peeringsLeader elects one writer among the `baton peerings` instances:
// with a witness configured, the holder of a second lease beside the
// role lease (key, blob or item name + "-peerings"); without one, this
// instance alone (run it in one place).
func peeringsLeader(ctx context.Context, cfg *config.Config, log *slog.Logger) (peerings.Leader, error) {
	if cfg.Witness == nil {
		return peerings.Single{}, nil
	}
	return peerings.WitnessLeader(ctx, *cfg.Witness, cfg.Node.Name, clock.Real{}, log)
}
