package routes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
)

// BatchReader is implemented by backends that read several route tables
// in one cloud call (EC2 DescribeRouteTables takes a list of IDs).
type BatchReader interface {
	// RoutesOf reads every table of tables; it fails as a whole.
	RoutesOf(ctx context.Context, tables []string) (map[string][]Route, error)
}

// TableWriter is implemented by backends that write every change of one
// table in one operation: Azure serializes the operations on a route
// table (a second write while one runs gets 409
// AnotherOperationInProgress) and each is a long-running operation, so
// route-by-route writes cost one operation time per route, a whole-table
// write one per table.
type TableWriter interface {
	// PointTable makes every route of rs (all in table) use this node as
	// its next hop, creating those the table lacks, and, when token > 0,
	// records token in the table's fencing tag in the same conditional
	// write; it fails with ErrStale when the table records a higher one.
	PointTable(ctx context.Context, table string, rs []Route, token uint64) error
}

// readbackRounds bounds how often a change that the read-back does not
// show is made again (eventual consistency, a concurrent writer, a
// transient failure that outlasted one call's attempts).
const readbackRounds = 3

// limiter bounds the cloud calls in flight and adapts to throttling:
// the bound halves when a call is throttled or fails transiently and grows
// by one per bound's worth of successes (additive increase, multiplicative
// decrease), so a burst of parallel changes settles at the rate the cloud
// grants instead of spending its retries against the throttle.
type limiter struct {
	mu       sync.Mutex
	max      float64
	limit    float64
	inflight int
	wake     chan struct{}
}

func newLimiter(n int) *limiter {
	return &limiter{max: float64(n), limit: float64(n), wake: make(chan struct{})}
}

func (l *limiter) acquire(ctx context.Context) error {
	for {
		l.mu.Lock()
		if float64(l.inflight) < l.limit {
			l.inflight++
			l.mu.Unlock()
			return nil
		}
		ch := l.wake
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *limiter) release(congested bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	if congested {
		l.limit = max(1, l.limit/2)
	} else {
		l.limit = min(l.max, l.limit+1/l.limit)
	}
	close(l.wake)
	l.wake = make(chan struct{})
}

// call runs fn with retries (Backoff) and one limiter slot per attempt.
func (a *Action) call(ctx context.Context, lim *limiter, what string, fn func(ctx context.Context) error) (int, error) {
	return a.opts.Backoff.Do(ctx, what, a.b.Classify, func(ctx context.Context) error {
		if err := lim.acquire(ctx); err != nil {
			return err
		}
		err := fn(ctx)
		lim.release(err != nil && a.retryable(err))
		return err
	})
}

// readAll reads tables: in one call when the backend batches, else one
// call per table in parallel. A failed batch falls back to per-table reads
// so that one bad table does not hide the others.
func (a *Action) readAll(ctx context.Context, lim *limiter, tables []string) (map[string][]Route, map[string]error) {
	out := make(map[string][]Route, len(tables))
	errs := map[string]error{}
	if len(tables) == 0 {
		return out, errs
	}
	if br, ok := a.b.(BatchReader); ok && len(tables) > 1 {
		var got map[string][]Route
		_, err := a.call(ctx, lim, fmt.Sprintf("reading %d route tables", len(tables)), func(ctx context.Context) error {
			var err error
			got, err = br.RoutesOf(ctx, tables)
			return err
		})
		if err == nil {
			for _, tb := range tables {
				out[tb] = got[tb]
			}
			a.remember(out)
			return out, errs
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, tb := range tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rs []Route
			_, err := a.call(ctx, lim, "reading route table "+tb, func(ctx context.Context) error {
				var err error
				rs, err = a.b.Routes(ctx, tb)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[tb] = err
				return
			}
			out[tb] = rs
		}()
	}
	wg.Wait()
	a.remember(out)
	return out, errs
}

func (a *Action) remember(rs map[string][]Route) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for tb, r := range rs {
		a.view[tb] = r
	}
}

// blind returns the routes of table known to be this node's without
// reading it: the listed destinations and the captured routes.
func (a *Action) blind(table string) []Route {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]bool{}
	var out []Route
	for _, d := range a.sel.Destinations {
		d = canonical(d)
		if !seen[d] {
			seen[d] = true
			out = append(out, Route{Table: table, Destination: d})
		}
	}
	for _, o := range a.owned {
		if o.Table == table && !seen[o.Destination] {
			seen[o.Destination] = true
			out = append(out, Route{Table: table, Destination: o.Destination, Name: o.Name})
		}
	}
	slices.SortFunc(out, func(x, y Route) int { return cmpString(x.Destination, y.Destination) })
	return out
}

// pending is one route being pointed here, across rounds.
type pending struct {
	r        Route
	exists   bool
	from     string
	attempts int
	err      error
	blind    bool // written before its table was read
}

// sync points every owned route of every table in scope at this node.
//
// It plans from what it knows: a fresh read when repairing or when the
// peer's routes must be discovered (peer_targets), else the last read of
// each table or, without one, the routes known to be this node's (listed
// and captured), which it changes without reading first. All changes of
// all tables then run in parallel (bounded by the limiter), one batched
// read verifies them, and whatever the read-back does not show as pointing
// here is planned again, up to readbackRounds rounds. A takeover thus
// costs one round trip for the changes plus one for the verification.
func (a *Action) sync(ctx context.Context, repair bool, logArgs ...any) error {
	start := a.opts.Clock.Now()
	tables, err := a.tables(ctx)
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	lim := newLimiter(a.opts.Concurrency)
	tableErr := map[string][]error{}
	cur := map[string][]Route{} // tables whose routes are known
	fresh := map[string]bool{}  // tables read during this sync
	if repair || a.sel.PeerTargets {
		rs, errs := a.readAll(ctx, lim, tables)
		for tb, err := range errs {
			tableErr[tb] = append(tableErr[tb], err)
		}
		cur = rs
		for tb := range rs {
			fresh[tb] = true
		}
	} else {
		a.mu.Lock()
		for _, tb := range tables {
			if v, ok := a.view[tb]; ok {
				cur[tb] = v
			}
		}
		a.mu.Unlock()
	}
	live := slices.DeleteFunc(slices.Clone(tables), func(tb string) bool { return tableErr[tb] != nil })
	state := map[string]*pending{} // by table|destination, across rounds
	gaveUp := map[string]bool{}
	get := func(r Route, exists, blind bool) *pending {
		k := r.Table + "|" + canonical(r.Destination)
		p := state[k]
		if p == nil {
			from := r.Target
			switch {
			case !exists:
				from = "(none)"
			case blind:
				from = "(unread)"
			}
			p = &pending{r: r, from: from}
			state[k] = p
		} else if exists && r.Target != "" {
			p.r = r
			if p.from == "(unread)" {
				p.from = r.Target
			}
		}
		p.exists, p.blind = exists, blind
		return p
	}
	fail := func(p *pending) {
		a.record(RouteStatus{Table: p.r.Table, Destination: p.r.Destination, From: p.from, Started: start, Duration: a.opts.Clock.Now().Sub(start), Attempts: p.attempts, Repair: repair, Err: p.err})
		a.log.Error("route does not point here", "table", p.r.Table, "destination", p.r.Destination, "reason", p.err.Error())
		tableErr[p.r.Table] = append(tableErr[p.r.Table], p.err)
		gaveUp[p.r.Table+"|"+canonical(p.r.Destination)] = true
	}
	for round := 0; ; round++ {
		var todo []*pending
		for _, tb := range live {
			rs, known := cur[tb]
			if !known {
				for _, r := range a.blind(tb) {
					todo = append(todo, get(r, true, true))
				}
				continue
			}
			change, missing := a.plan(tb, rs)
			for _, r := range change {
				if !gaveUp[tb+"|"+canonical(r.Destination)] {
					todo = append(todo, get(r, true, false))
				}
			}
			if a.sel.CreateMissing {
				for _, d := range missing {
					if !gaveUp[tb+"|"+d] {
						todo = append(todo, get(Route{Table: tb, Destination: d}, false, false))
					}
				}
			}
		}
		if len(todo) == 0 {
			// Nothing to change by what is known; a table planned from an
			// earlier read is read now, so the outcome is always verified.
			var stale []string
			for _, tb := range live {
				if !fresh[tb] {
					stale = append(stale, tb)
				}
			}
			if len(stale) == 0 {
				break
			}
			rs, errs := a.readAll(ctx, lim, stale)
			for _, tb := range stale {
				fresh[tb] = true
				if err := errs[tb]; err != nil {
					tableErr[tb] = append(tableErr[tb], err)
					live = slices.DeleteFunc(live, func(x string) bool { return x == tb })
					continue
				}
				cur[tb] = rs[tb]
			}
			round--
			continue
		}
		if round >= readbackRounds {
			for _, p := range todo {
				if p.err == nil {
					p.err = fmt.Errorf("route %s in %s does not point here after %d rounds", p.r.Destination, p.r.Table, readbackRounds)
				}
				fail(p)
			}
			break
		}
		if round > 0 {
			if err := a.pause(ctx, round); err != nil {
				for _, p := range todo {
					p.err = fmt.Errorf("route %s in %s: %w", p.r.Destination, p.r.Table, err)
					fail(p)
				}
				break
			}
		}
		routes := make([]Route, len(todo))
		for i, p := range todo {
			routes[i] = p.r
		}
		if err := a.own(routes, a.opts.Clock.Now()); err != nil {
			return fmt.Errorf("routes: recording owned routes before changing them: %w", err)
		}
		a.point(ctx, lim, todo)
		touched := map[string]bool{}
		var read []string
		for _, p := range todo {
			if !touched[p.r.Table] {
				touched[p.r.Table] = true
				read = append(read, p.r.Table)
			}
		}
		slices.Sort(read)
		after, errs := a.readAll(ctx, lim, read)
		now := a.opts.Clock.Now()
		for _, p := range todo {
			tb := p.r.Table
			if err := errs[tb]; err != nil {
				if p.err == nil {
					p.err = fmt.Errorf("reading back route table %s: %w", tb, err)
				}
				fail(p)
				continue
			}
			a.settle(p, after[tb], start, now, repair, fail)
		}
		for _, tb := range read {
			if errs[tb] != nil {
				live = slices.DeleteFunc(live, func(x string) bool { return x == tb })
				continue
			}
			cur[tb], fresh[tb] = after[tb], true
			if err := a.recapture(tb, after[tb], now); err != nil {
				tableErr[tb] = append(tableErr[tb], err)
			}
		}
	}
	// Tables nothing changed in still refresh the capture; listed
	// destinations missing without create_missing are reported.
	now := a.opts.Clock.Now()
	for _, tb := range live {
		rs, known := cur[tb]
		if !known {
			continue
		}
		if err := a.recapture(tb, rs, now); err != nil {
			tableErr[tb] = append(tableErr[tb], err)
		}
		if _, missing := a.plan(tb, rs); len(missing) > 0 && !a.sel.CreateMissing {
			for _, d := range missing {
				a.log.Warn("listed destination missing from route table", "table", tb, "destination", d, "reason", "create_missing is off")
			}
			tableErr[tb] = append(tableErr[tb], fmt.Errorf("route table %s has no route for %v (set create_missing to create them)", tb, missing))
		}
	}
	a.reportParts(ctx, start, tables, tableErr)
	var all []error
	for _, tb := range tables {
		all = append(all, tableErr[tb]...)
	}
	if err := errors.Join(all...); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	a.log.Debug("routes point here", append(logArgs, "tables", len(tables), "took", a.opts.Clock.Now().Sub(start))...)
	return nil
}

// point makes every change of todo in parallel, bounded by lim: one
// write per table where the backend writes whole tables, else one per
// route.
func (a *Action) point(ctx context.Context, lim *limiter, todo []*pending) {
	var wg sync.WaitGroup
	if tw, ok := a.b.(TableWriter); ok && !a.opts.PerRoute {
		a.mu.Lock()
		token := a.token
		a.mu.Unlock()
		byTable := map[string][]*pending{}
		for _, p := range todo {
			byTable[p.r.Table] = append(byTable[p.r.Table], p)
		}
		for table, ps := range byTable {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rs := make([]Route, len(ps))
				for i, p := range ps {
					rs[i] = p.r
				}
				n, err := a.call(ctx, lim, "writing route table "+table, func(ctx context.Context) error {
					return tw.PointTable(ctx, table, rs, token)
				})
				for _, p := range ps {
					p.attempts += n
					p.err = err
				}
			}()
		}
		wg.Wait()
		return
	}
	for _, p := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			verb := "replacing"
			if !p.exists {
				verb = "creating"
			}
			n, err := a.call(ctx, lim, fmt.Sprintf("%s route %s in %s", verb, p.r.Destination, p.r.Table), func(ctx context.Context) error {
				return a.b.Point(ctx, p.r, p.exists)
			})
			p.attempts += n
			p.err = err
		}()
	}
	wg.Wait()
}

// settle judges one change by the read-back of its table: done (recorded),
// final failure (recorded), or left for the next round, which plans again
// from the read-back.
func (a *Action) settle(p *pending, after []Route, start, now time.Time, repair bool, fail func(*pending)) {
	var got Route
	ok := false
	for _, r := range after {
		if canonical(r.Destination) == canonical(p.r.Destination) {
			got, ok = r, true
			break
		}
	}
	switch {
	case ok && a.b.Owner(got) == OwnerLocal:
		a.record(RouteStatus{Table: p.r.Table, Destination: p.r.Destination, From: p.from, Started: start, Duration: now.Sub(start), Attempts: p.attempts, Repair: repair})
		msg := "route points here"
		if repair {
			msg = "repaired route that pointed elsewhere"
		}
		a.log.Info(msg, "table", p.r.Table, "destination", p.r.Destination, "from", p.from, "took", now.Sub(start))
		p.err = nil
	case !ok && p.blind:
		// Written without a read, and the table has no such route: a
		// captured route deleted since (the capture drops it) or a listed
		// destination the next round creates or reports. Not a failure
		// of the change itself.
		p.err = nil
	case p.err != nil && !a.retryable(p.err):
		fail(p) // permission, missing resource, bad request: final
	case p.err == nil:
		what := "missing"
		if ok {
			what = "pointing at " + got.Target
		}
		p.err = fmt.Errorf("read-back of route %s in %s shows it %s", p.r.Destination, p.r.Table, what)
	}
}

// reportParts tells the pipeline step running sync how each route table
// went (action.ReportPart): the routes this sync changed in it, when the
// last of them was confirmed, the most cloud calls one of them took, and
// the table's errors. A table with nothing to change and no error is left
// out.
func (a *Action) reportParts(ctx context.Context, start time.Time, tables []string, tableErr map[string][]error) {
	type outcome struct {
		routes   int
		end      time.Time
		attempts int
	}
	by := map[string]*outcome{}
	a.mu.Lock()
	for _, s := range a.status {
		if !s.Started.Equal(start) {
			continue // changed by an earlier sync
		}
		o := by[s.Table]
		if o == nil {
			o = &outcome{end: start}
			by[s.Table] = o
		}
		o.routes++
		if e := s.Started.Add(s.Duration); e.After(o.end) {
			o.end = e
		}
		o.attempts = max(o.attempts, s.Attempts)
	}
	a.mu.Unlock()
	now := a.opts.Clock.Now()
	for _, tb := range tables {
		o, errs := by[tb], tableErr[tb]
		if o == nil && len(errs) == 0 {
			continue
		}
		if o == nil {
			o = &outcome{end: now}
		}
		target := fmt.Sprintf("%s (%d routes)", tb, o.routes)
		if o.routes == 1 {
			target = tb + " (1 route)"
		}
		action.ReportPart(ctx, action.NewPart(target, start, o.end.Sub(start), o.attempts, errors.Join(errs...)))
	}
}
