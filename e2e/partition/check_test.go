package partition

import (
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// record builds samples every 10ms from a compact script: one character
// per tick, 'a' nva-a alone answers 200, 'b' nva-b alone, '2' both, '.'
// neither.
func record(script string) []Sample {
	var out []Sample
	for i, ch := range script {
		s := Sample{At: t0.Add(time.Duration(i) * 10 * time.Millisecond), Code: [2]int{503, 503}}
		switch ch {
		case 'a':
			s.Code[0] = 200
		case 'b':
			s.Code[1] = 200
		case '2':
			s.Code = [2]int{200, 200}
		}
		out = append(out, s)
	}
	return out
}

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func TestCheckWitnessCountsDualActiveAndNoActive(t *testing.T) {
	// 30 ticks of a, 10 of nobody, 2 dual, then b for 40 ticks.
	samples := record(strings.Repeat("a", 30) + strings.Repeat(".", 10) + "22" + strings.Repeat("b", 40))
	trials := []Trial{{N: 0, Fault: Fault{Kind: Kill}, Node: 0, Start: ms(100), Heal: ms(350), Down: ms(100)}}
	r := Check(samples, trials, [2][]lab.RoleChange{}, Limits{Witness: true, TTL: 2 * time.Second, Interval: 100 * time.Millisecond})
	if r.DualActiveSamples != 2 {
		t.Errorf("dual-active samples %d, want 2", r.DualActiveSamples)
	}
	if len(r.NoActive) != 1 || r.NoActive[0] != 100*time.Millisecond {
		t.Errorf("no-active windows %v, want one of 100ms", r.NoActive)
	}
	if r.OK() {
		t.Errorf("a dual-active sample with a witness must be a violation")
	}
	if got := r.Convergence[0]; got != 70*time.Millisecond {
		t.Errorf("convergence %v, want 70ms (b alone from 420ms, heal at 350ms)", got)
	}
}

func TestCheckNoActiveLimit(t *testing.T) {
	samples := record(strings.Repeat("a", 10) + strings.Repeat(".", 240) + strings.Repeat("b", 40))
	trials := []Trial{{Fault: Fault{Kind: Kill}, Start: ms(50), Heal: ms(2000)}}
	lim := Limits{Witness: true, TTL: 2 * time.Second, Interval: 100 * time.Millisecond}
	r := Check(samples, trials, [2][]lab.RoleChange{}, lim)
	if r.P95 != 2400*time.Millisecond || r.OK() {
		t.Fatalf("p95 %v ok=%v: want 2.4s and a violation (limit %v)", r.P95, r.OK(), lim.NoActiveLimit())
	}
	lim.TTL = 3 * time.Second
	if r := Check(samples, trials, [2][]lab.RoleChange{}, lim); !r.OK() {
		t.Fatalf("2.4s within a 3s lease must pass: %v", r.Violations)
	}
}

func TestCheckWithoutWitnessDualActiveMustEndAfterHeal(t *testing.T) {
	// Partition from 100ms to 500ms: both active inside is expected.
	trials := []Trial{{Fault: Fault{Kind: CutNodes}, Start: ms(100), Heal: ms(500)}}
	lim := Limits{Interval: 100 * time.Millisecond}
	quick := record(strings.Repeat("a", 20) + strings.Repeat("2", 38) + strings.Repeat("b", 40)) // last dual at 570ms
	r := Check(quick, trials, [2][]lab.RoleChange{}, lim)
	if !r.OK() || len(r.DualAfterHeal) != 1 || r.DualAfterHeal[0] != 70*time.Millisecond {
		t.Fatalf("window ending 70ms after the heal: ok=%v after=%v violations=%v", r.OK(), r.DualAfterHeal, r.Violations)
	}
	slow := record(strings.Repeat("a", 20) + strings.Repeat("2", 70) + strings.Repeat("b", 40)) // last dual at 890ms
	if r := Check(slow, trials, [2][]lab.RoleChange{}, lim); r.OK() {
		t.Fatalf("a window ending 390ms after the heal must be a violation")
	}
}

func TestCheckLogOverlaps(t *testing.T) {
	samples := record(strings.Repeat("a", 100))
	lim := Limits{Witness: true, TTL: 2 * time.Second, Interval: 100 * time.Millisecond}
	logs := [2][]lab.RoleChange{
		{{Time: ms(0), To: "ACTIVE"}, {Time: ms(600), To: "STANDBY"}},
		{{Time: ms(500), To: "ACTIVE"}},
	}
	trials := []Trial{{Fault: Fault{Kind: Isolate}, Start: ms(100), Heal: ms(800)}}
	r := Check(samples, trials, logs, lim)
	if len(r.LogOverlaps) != 1 || r.OK() {
		t.Fatalf("overlap 500..600ms must be found: %v", r.LogOverlaps)
	}
	// The same logs when nva-a was killed at 400ms: its ACTIVE ends there.
	trials = []Trial{{Fault: Fault{Kind: Kill}, Node: 0, Start: ms(400), Down: ms(400), Heal: ms(800)}}
	if r := Check(samples, trials, logs, lim); len(r.LogOverlaps) != 0 {
		t.Fatalf("a killed node's stale ACTIVE counted: %v", r.LogOverlaps)
	}
}

// No-active time during an outage of the witness alone is reported on its
// own; in a compound fault only the time after the heal counts.
func TestCheckWitnessOutages(t *testing.T) {
	samples := record(strings.Repeat("a", 20) + strings.Repeat(".", 15) + strings.Repeat("a", 65) +
		strings.Repeat(".", 60) + strings.Repeat("b", 40))
	trials := []Trial{
		{N: 0, Fault: Fault{Kind: WitnessDown}, Start: ms(100), Heal: ms(500)},
		{N: 1, Fault: Fault{Kind: WitnessThenKill}, Node: 0, Start: ms(800), Heal: ms(1400), Down: ms(1000)},
	}
	lim := Limits{Witness: true, TTL: 2 * time.Second, Interval: 100 * time.Millisecond}
	r := Check(samples, trials, [2][]lab.RoleChange{}, lim)
	if r.WitnessOutageNoActive != 150*time.Millisecond {
		t.Errorf("witness outage no-active %v, want 150ms", r.WitnessOutageNoActive)
	}
	// The compound window runs 1000ms..1600ms; 200ms of it after the heal.
	if len(r.NoActive) != 2 || r.NoActive[0] != 150*time.Millisecond || r.NoActive[1] != 200*time.Millisecond {
		t.Errorf("no-active windows %v, want 150ms and 200ms", r.NoActive)
	}
	if r.OK() {
		t.Errorf("no active for longer than an interval during an outage of the witness alone must be a violation")
	}
	// A blip shorter than one interval is counted, not a violation.
	short := record(strings.Repeat("a", 20) + strings.Repeat(".", 3) + strings.Repeat("a", 77))
	r = Check(short, trials[:1], [2][]lab.RoleChange{}, lim)
	if r.WitnessOutageNoActive != 30*time.Millisecond || !r.OK() {
		t.Errorf("30ms blip: counted %v ok=%v %v, want 30ms and no violation", r.WitnessOutageNoActive, r.OK(), r.Violations)
	}
}

func TestScheduleIsSeededAndCoversEveryKind(t *testing.T) {
	a := Schedule(42, 20, ScheduleOptions{Witness: true})
	b := Schedule(42, 20, ScheduleOptions{Witness: true})
	if len(a) != 20 {
		t.Fatalf("got %d faults", len(a))
	}
	seen := map[Kind]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different schedule at %d: %v vs %v", i, a[i], b[i])
		}
		if i < 9 {
			seen[a[i].Kind] = true
		}
		limit := 3 * time.Second
		switch {
		case a[i].Kind == Freeze:
			limit = 10 * time.Second
		case a[i].Kind.WitnessOnly():
			limit = 20 * time.Second
		}
		if a[i].Dur < 500*time.Millisecond || a[i].Dur > limit {
			t.Errorf("fault %d out of range: %v", i, a[i])
		}
		if a[i].Kind.Compound() && (a[i].Target != TargetActive || a[i].Dur < 1500*time.Millisecond) {
			t.Errorf("fault %d: a compound fault hits the active and lasts at least 1.5s: %v", i, a[i])
		}
	}
	if len(seen) != 9 {
		t.Errorf("the first round must hold every kind once: %v", seen)
	}
	if c := Schedule(43, 12, ScheduleOptions{Witness: true}); c[0] == a[0] && c[1] == a[1] && c[2] == a[2] {
		t.Errorf("different seeds gave the same schedule")
	}
	for _, f := range Schedule(1, 20, ScheduleOptions{}) {
		if f.Kind == CutWitness || f.Kind.WitnessOnly() || f.Kind.Compound() {
			t.Fatalf("witness faults scheduled without a witness")
		}
	}
}

func TestSettledFor(t *testing.T) {
	s := record("aaaa..bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2bbb")
	// Up to 100ms: 'a' alone from 0 to 30ms, then nobody.
	if who, d := settledFor(s, time.Time{}, ms(35)); who != 0 || d != 30*time.Millisecond {
		t.Fatalf("at 35ms: %d for %v, want 0 for 30ms", who, d)
	}
	if who, _ := settledFor(s, time.Time{}, ms(45)); who != -1 {
		t.Fatalf("at 45ms nobody answers alone, got %d", who)
	}
	// 'b' from 60ms to 440ms, then both at 450ms.
	if who, d := settledFor(s, time.Time{}, ms(440)); who != 1 || d != 380*time.Millisecond {
		t.Fatalf("at 440ms: %d for %v, want 1 for 380ms", who, d)
	}
	if who, _ := settledFor(s, time.Time{}, ms(455)); who != -1 {
		t.Fatalf("both answered at 450ms, got %d", who)
	}
	// Counted from a heal at 400ms, 'b' has answered alone for 40ms.
	if who, d := settledFor(s, ms(400), ms(440)); who != 1 || d != 40*time.Millisecond {
		t.Fatalf("since 400ms: %d for %v, want 1 for 40ms", who, d)
	}
	if who, _ := settledFor(s, ms(500), ms(440)); who != -1 {
		t.Fatalf("no samples since 500ms, got %d", who)
	}
}

// A record the suite accepts as converged (settledFor ≥ 300ms, its
// waitConverged test) must pass the checker's convergence test, however
// the record ends: the suite stops the prober right after.
func TestSettledRecordPassesCheck(t *testing.T) {
	for _, c := range []struct {
		script string
		heal   int // ms
	}{
		{"22222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 20},
		{"....2.b.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 20},
		// Alone long before the heal, then a stale answer after it.
		{"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 415},
	} {
		script, heal := c.script, ms(c.heal)
		s := record(script)
		var end int
		for end = 1; end <= len(s); end++ {
			if _, d := settledFor(s[:end], heal, ms(10*end)); d >= 300*time.Millisecond {
				break
			}
		}
		if end > len(s) {
			t.Fatalf("%q never settles", script)
		}
		trials := []Trial{{Fault: Fault{Kind: CutNodes}, Start: ms(0), Heal: heal}}
		r := Check(s[:end], trials, [2][]lab.RoleChange{}, Limits{Interval: 100 * time.Millisecond})
		if !r.OK() {
			t.Fatalf("%q cut at %d samples: %v", script, end, r.Violations)
		}
	}
}
