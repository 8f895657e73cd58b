package partition

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Prober polls both nodes' probes every Every from the client namespace,
// as a cloud load balancer would, and records who answered 200.
type Prober struct {
	c     *Cluster
	every time.Duration

	mu      sync.Mutex
	samples []Sample
}

// NewProber returns a prober of c's nodes polling every every (10ms when 0).
func NewProber(c *Cluster, every time.Duration) *Prober {
	if every <= 0 {
		every = 10 * time.Millisecond
	}
	return &Prober{c: c, every: every}
}

// Run polls until ctx ends. Each tick asks both nodes at once; a tick is
// recorded when both answered or timed out (100ms).
func (p *Prober) Run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case at := <-t.C:
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := Sample{At: at}
				var inner sync.WaitGroup
				for i := range 2 {
					inner.Add(1)
					go func() {
						defer inner.Done()
						s.Code[i] = p.c.Probe(ctx, i)
					}()
				}
				inner.Wait()
				if ctx.Err() != nil {
					return
				}
				p.mu.Lock()
				p.samples = append(p.samples, s)
				p.mu.Unlock()
			}()
		}
	}
}

// Samples returns the record so far, sorted by time.
func (p *Prober) Samples() []Sample {
	p.mu.Lock()
	s := slices.Clone(p.samples)
	p.mu.Unlock()
	slices.SortFunc(s, func(a, b Sample) int { return a.At.Compare(b.At) })
	return s
}
