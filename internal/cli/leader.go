package cli

import (
	"context"
	"log/slog"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/peerings"
)

// peeringsLeader elects one writer among the `baton peerings` instances:
// with a witness configured (bgp.peerings.witness, else the role
// witness), the holder of its lease named key, blob or item + "-peerings";
// without one, this instance alone (run it in one place).
func peeringsLeader(ctx context.Context, cfg *config.Config, log *slog.Logger) (peerings.Leader, error) {
	wc := cfg.BGP.Peerings.WriterWitness(cfg.Witness)
	if wc == nil {
		return peerings.Single{}, nil
	}
	return peerings.WitnessLeader(ctx, *wc, cfg.Node.Name, clock.Real{}, log)
}
