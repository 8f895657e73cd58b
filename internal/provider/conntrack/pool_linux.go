package conntrack

import (
	"context"
	"errors"
	"sync"
)

// Pool writes through several request sockets in parallel: the kernel
// does the work of a write in the writer's system call, so n sockets
// use up to n CPUs. Operations on one connection stay in order (they go
// to the same socket). Reads go through the first socket.
type Pool struct {
	conns []*Conn
}

// OpenPool opens n request sockets in the calling thread's namespace.
func OpenPool(n int) (*Pool, error) {
	p := &Pool{}
	for range max(n, 1) {
		c, err := Open()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.conns = append(p.conns, c)
	}
	return p, nil
}

// Close closes every socket.
func (p *Pool) Close() error {
	var errs []error
	for _, c := range p.conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Dump reads the whole table.
func (p *Pool) Dump(ctx context.Context) ([]Entry, error) { return p.conns[0].Dump(ctx) }

// Get reads one entry.
func (p *Pool) Get(k Key) (Entry, bool, error) { return p.conns[0].Get(k) }

// Flush deletes every entry.
func (p *Pool) Flush() error { return p.conns[0].Flush() }

// minParallel is the smallest write worth splitting.
const minParallel = 2048

// Apply is Conn.Apply spread over the pool's sockets.
func (p *Pool) Apply(ctx context.Context, ops []Op) (ApplyStats, error) {
	n := len(p.conns)
	if n == 1 || len(ops) < minParallel {
		return p.conns[0].Apply(ctx, ops)
	}
	shards := make([][]Op, n)
	for _, op := range ops {
		i := op.Entry.Key().Shard(n)
		shards[i] = append(shards[i], op)
	}
	var wg sync.WaitGroup
	stats := make([]ApplyStats, n)
	errs := make([]error, n)
	for i := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i], errs[i] = p.conns[i].Apply(ctx, shards[i])
		}()
	}
	wg.Wait()
	var st ApplyStats
	for _, s := range stats {
		st.Add(s)
	}
	return st, errors.Join(errs...)
}
