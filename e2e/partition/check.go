package partition

import (
	"fmt"
	"sort"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/stats"
)

// Sample is one prober tick: the HTTP code each node's probe answered
// (0: no answer within the timeout).
type Sample struct {
	At   time.Time
	Code [2]int
}

// actives counts the nodes that answered 200.
func (s Sample) actives() int {
	n := 0
	for _, c := range s.Code {
		if c == 200 {
			n++
		}
	}
	return n
}

// Trial is one fault as it was carried out.
type Trial struct {
	N     int
	Fault Fault
	Node  int       // the node the fault hit (0 = nva-a, 1 = nva-b)
	Start time.Time // when the fault was in place
	Heal  time.Time // when it was healed (resumed, restarted)
	// Down is when the node's process stopped running (Kill: exited;
	// Freeze: stopped) — zero for cuts.
	Down time.Time
}

// Limits are the targets the checker holds the run to.
type Limits struct {
	Witness  bool
	TTL      time.Duration // lease time (witness runs)
	Interval time.Duration // heartbeat interval
	Tick     time.Duration // prober period
	// Stable is how long exactly one node must answer 200 for the pair
	// to count as converged (default 250ms; the suite waits for longer,
	// see settledFor, so that a run it ends always passes this check).
	Stable time.Duration
}

// NoActiveLimit is the longest acceptable 95th percentile of the
// no-active windows with a witness: the lease time plus three heartbeat
// intervals.
func (l Limits) NoActiveLimit() time.Duration { return l.TTL + 3*l.Interval }

// Report is what the checker found.
type Report struct {
	Trials            int
	DualActiveSamples int
	// NoActive are the lengths of the windows in which no node answered
	// 200, after the first fault started.
	NoActive []time.Duration
	// NoActiveTrial is, per no-active window, the index of the trial it
	// began in.
	NoActiveTrial []int
	P50, P95      time.Duration
	// WitnessOutageNoActive is the no-active time in trials that took
	// the witness alone away (target 0: the active holds by agreement).
	WitnessOutageNoActive time.Duration
	// Convergence is, per trial, the time from the heal until exactly
	// one node answered 200 for Limits.Stable (-1: never).
	Convergence []time.Duration
	// DualAfterHeal is, per dual-active window still open at a heal, the
	// time from that heal to the window's last dual-active sample.
	DualAfterHeal []time.Duration
	// LogOverlaps are the periods in which both nodes' logs say ACTIVE
	// while both processes ran (freeze resumptions excluded: see Check).
	LogOverlaps []string
	// Violations are the targets missed, each with the trial it belongs to.
	Violations []string
}

// OK reports whether every target was met.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// window is a run of consecutive samples [first, last].
type window struct{ first, last, next time.Time }

// runs returns the windows of consecutive samples for which match holds;
// next is the time of the sample after the window (zero at the end).
func runs(samples []Sample, match func(Sample) bool) []window {
	var out []window
	open := false
	for _, s := range samples {
		switch {
		case match(s) && !open:
			out = append(out, window{first: s.At, last: s.At})
			open = true
		case match(s):
			out[len(out)-1].last = s.At
		case open:
			out[len(out)-1].next = s.At
			open = false
		}
	}
	return out
}

// trialAt returns the index of the trial running at t (the last one
// started at or before t), -1 before the first.
func trialAt(trials []Trial, t time.Time) int {
	return sort.Search(len(trials), func(i int) bool { return trials[i].Start.After(t) }) - 1
}

// Check reads the prober's record (samples, sorted by time), the trials
// and both nodes' role changes and holds them to lim.
//
//   - With a witness: no sample may show two nodes answering 200; the 95th
//     percentile of the no-active windows must be at most TTL + 3
//     intervals; and the nodes' logs must never show both ACTIVE while
//     both processes ran. A frozen process cannot step down, so the log
//     check leaves out the period from a freeze until one lease time after
//     the resume (the prober, which sees what the load balancer sees,
//     covers it).
//   - Without: every dual-active window still open at a heal must close
//     within one heartbeat interval of it.
//   - Always: after every heal the pair converges to exactly one node
//     answering 200 before the next trial.
func Check(samples []Sample, trials []Trial, logs [2][]lab.RoleChange, lim Limits) Report {
	if lim.Stable == 0 {
		lim.Stable = 250 * time.Millisecond
	}
	if lim.Tick == 0 {
		lim.Tick = 10 * time.Millisecond
	}
	r := Report{Trials: len(trials)}
	if len(trials) == 0 {
		return r
	}
	violate := func(i int, format string, args ...any) {
		where := "before the first trial"
		if i >= 0 {
			where = fmt.Sprintf("trial %d (%s on nva-%c)", trials[i].N, trials[i].Fault, 'a'+trials[i].Node)
		}
		r.Violations = append(r.Violations, where+": "+fmt.Sprintf(format, args...))
	}
	begin := trials[0].Start
	var run []Sample
	for _, s := range samples {
		if !s.At.Before(begin) {
			run = append(run, s)
		}
	}

	for _, w := range runs(run, func(s Sample) bool { return s.actives() == 2 }) {
		n := 0
		for _, s := range run {
			if !s.At.Before(w.first) && !s.At.After(w.last) {
				n++
			}
		}
		r.DualActiveSamples += n
		i := trialAt(trials, w.first)
		if lim.Witness {
			violate(i, "%d dual-active samples from %s to %s", n, stamp(w.first), stamp(w.last))
			continue
		}
		// Without a witness a partition makes two actives; the heal must
		// end it within one interval.
		j := trialAt(trials, w.last)
		if j < 0 {
			violate(j, "dual active from %s to %s", stamp(w.first), stamp(w.last))
			continue
		}
		heal := trials[j].Heal
		if heal.IsZero() || w.last.Before(heal) {
			if w.next.IsZero() && !heal.IsZero() {
				violate(j, "dual active at the end of the run")
			}
			continue
		}
		late := w.last.Sub(heal)
		r.DualAfterHeal = append(r.DualAfterHeal, late)
		if late > lim.Interval {
			violate(j, "dual active until %v after the heal (limit one interval, %v)", late.Round(time.Millisecond), lim.Interval)
		}
	}

	for _, w := range runs(run, func(s Sample) bool { return s.actives() == 0 }) {
		end := w.next
		if end.IsZero() {
			end = w.last.Add(lim.Tick)
		}
		first, i := w.first, trialAt(trials, w.first)
		if i >= 0 {
			switch k := trials[i].Fault.Kind; {
			case k.WitnessOnly():
				// Every such window counts in the line; one longer than a
				// heartbeat interval means the pair went down (shorter: a
				// probe answered in the instant a role event was applied).
				r.WitnessOutageNoActive += end.Sub(first)
				if end.Sub(first) > lim.Interval {
					violate(i, "no active node for %v during an outage of the witness alone", end.Sub(first).Round(time.Millisecond))
				}
			case k.Compound():
				// Nobody may take over before the witness is back.
				if heal := trials[i].Heal; first.Before(heal) {
					if !end.After(heal) {
						continue
					}
					first = heal
				}
			}
		}
		r.NoActive = append(r.NoActive, end.Sub(first))
		r.NoActiveTrial = append(r.NoActiveTrial, i)
	}
	r.P50, r.P95 = stats.Duration(r.NoActive, 50), stats.Duration(r.NoActive, 95)
	if lim.Witness && r.P95 > lim.NoActiveLimit() {
		r.Violations = append(r.Violations, fmt.Sprintf("no-active p95 %v exceeds lease time + 3 intervals (%v)",
			r.P95.Round(time.Millisecond), lim.NoActiveLimit()))
	}

	for i, tr := range trials {
		end := time.Time{}
		if i+1 < len(trials) {
			end = trials[i+1].Start
		}
		c := convergence(run, tr.Start, tr.Heal, end, lim.Stable)
		r.Convergence = append(r.Convergence, c)
		if c < 0 {
			violate(i, "no single active node after the heal")
		}
	}

	if lim.Witness {
		for _, o := range logOverlaps(trials, logs, lim.TTL) {
			r.LogOverlaps = append(r.LogOverlaps, o.String())
			violate(trialAt(trials, o.first), "both logs say ACTIVE from %s to %s", stamp(o.first), stamp(o.last))
		}
	}
	return r
}

// convergence returns the time from heal until one node alone answered
// 200 for stable without a break, looking at the samples from the trial's
// start up to end (zero: to the end of the record). A stretch that began
// before the heal and lasted past it counts as converged at once. It
// returns -1 if that never happens.
func convergence(samples []Sample, start, heal, end time.Time, stable time.Duration) time.Duration {
	var since time.Time
	who := -1
	for _, s := range samples {
		if s.At.Before(start) {
			continue
		}
		if !end.IsZero() && !s.At.Before(end) {
			break
		}
		one := s.alone()
		if one < 0 || one != who {
			since, who = time.Time{}, one
			if one >= 0 {
				since = s.At
			}
			continue
		}
		if !s.At.Before(heal) && s.At.Sub(since) >= stable {
			return max(since.Sub(heal), 0)
		}
	}
	return -1
}

// alone returns the node that alone answered 200 in s, or -1.
func (s Sample) alone() int {
	if s.actives() != 1 {
		return -1
	}
	if s.Code[0] == 200 {
		return 0
	}
	return 1
}

// settledFor looks at the samples taken from since up to upTo (sorted by
// time) and returns the node that alone answered 200 in the last of them
// and for how long it has without a break; -1 when none did.
func settledFor(samples []Sample, since, upTo time.Time) (int, time.Duration) {
	end := len(samples)
	for end > 0 && samples[end-1].At.After(upTo) {
		end--
	}
	if end == 0 {
		return -1, 0
	}
	who := samples[end-1].alone()
	if who < 0 {
		return -1, 0
	}
	first := end - 1
	if samples[first].At.Before(since) {
		return -1, 0
	}
	for first > 0 && samples[first-1].alone() == who && !samples[first-1].At.Before(since) {
		first--
	}
	return who, samples[end-1].At.Sub(samples[first].At)
}

type span struct{ first, last time.Time }

func (s span) String() string { return stamp(s.first) + ".." + stamp(s.last) }

func stamp(t time.Time) string { return t.Format("15:04:05.000") }

// activeSpans turns one node's role changes into the spans it was
// ACTIVE; a span still open at the end lasts until far.
func activeSpans(changes []lab.RoleChange, far time.Time) []span {
	var out []span
	var since time.Time
	for _, c := range changes {
		if c.To == "ACTIVE" && since.IsZero() {
			since = c.Time
		} else if c.To != "ACTIVE" && !since.IsZero() {
			out = append(out, span{since, c.Time})
			since = time.Time{}
		}
	}
	if !since.IsZero() {
		out = append(out, span{since, far})
	}
	return out
}

// cut removes [from, to) from every span.
func cut(spans []span, from, to time.Time) []span {
	var out []span
	for _, s := range spans {
		if !s.last.After(from) || !s.first.Before(to) {
			out = append(out, s)
			continue
		}
		if s.first.Before(from) {
			out = append(out, span{s.first, from})
		}
		if s.last.After(to) {
			out = append(out, span{to, s.last})
		}
	}
	return out
}

// logOverlaps returns the periods in which both nodes' logs say ACTIVE,
// leaving out what a process cannot have done: a killed node is not
// active from its death until its next log line (a restart starts in
// INIT), and a frozen node is left out from the freeze until one lease
// time after it resumed.
func logOverlaps(trials []Trial, logs [2][]lab.RoleChange, ttl time.Duration) []span {
	far := time.Now().Add(24 * time.Hour)
	var sp [2][]span
	for i := range logs {
		sp[i] = activeSpans(logs[i], far)
		for _, tr := range trials {
			if tr.Node != i || tr.Down.IsZero() {
				continue
			}
			switch tr.Fault.Kind {
			case Kill, WitnessThenKill:
				// The restarted process logs from INIT: nothing it logged
				// before the kill holds after it.
				next := far
				for _, c := range logs[i] {
					if c.Time.After(tr.Down) {
						next = c.Time
						break
					}
				}
				sp[i] = cut(sp[i], tr.Down, next)
			case Freeze:
				sp[i] = cut(sp[i], tr.Down, tr.Heal.Add(ttl))
			}
		}
	}
	var out []span
	for _, a := range sp[0] {
		for _, b := range sp[1] {
			first, last := maxTime(a.first, b.first), minTime(a.last, b.last)
			if first.Before(last) {
				out = append(out, span{first, last})
			}
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
