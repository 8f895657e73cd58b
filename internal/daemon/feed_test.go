package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/heartbeat"
)

func TestHistoryAttachesRunsAndKeepsADayOnDisk(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := loadHistory(dir, clk, log)
	if err != nil {
		t.Fatal(err)
	}
	old := clk.Now()
	h.add(api.Transition{At: old, From: "INIT", To: "STANDBY", Term: 1})
	clk.Advance(23 * time.Hour)
	at := clk.Now()
	run := action.Run{Op: "activate", Term: 2, Decided: at, Finished: at.Add(40 * time.Millisecond),
		Steps: []action.Result{{Action: "vip", Op: "activate", OK: true, Started: at.Add(time.Millisecond), Duration: 3 * time.Millisecond, Attempts: 1,
			Parts: []action.Part{
				action.NewPart("10.0.0.5/24 on eth0", at.Add(time.Millisecond), time.Millisecond, 1, nil),
				action.NewPart("10.0.0.6/24 on eth0", at.Add(2*time.Millisecond), 2*time.Millisecond, 2, errors.New("no such device")),
			}}}}
	// The pipeline may finish before the loop records the transition.
	if _, ok := h.attach(run); ok {
		t.Fatal("a run attached to a transition not recorded yet")
	}
	done := h.add(api.Transition{At: at, From: "STANDBY", To: "ACTIVE", Term: 2})
	if len(done) != 1 || len(done[0].Steps) != 1 || done[0].TotalMs != 40 || done[0].Steps[0].DoneAtMs != 4 {
		t.Fatalf("the waiting run was not attached: %+v", done)
	}
	if p := done[0].Steps[0].Parts; len(p) != 2 || p[0].DoneAtMs != 2 || p[1].DoneAtMs != 4 || p[1].OK || p[1].Error != "no such device" || p[1].Attempts != 2 {
		t.Fatalf("the step's parts: %+v", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.run(ctx) // writes once and returns

	var onDisk []api.Transition
	b, err := os.ReadFile(filepath.Join(dir, historyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil || len(onDisk) != 2 {
		t.Fatalf("history on disk: %s (%v)", b, err)
	}

	// A restart a little later: the first transition is over a day old.
	clk.Advance(2 * time.Hour)
	h2, err := loadHistory(dir, clk, log)
	if err != nil {
		t.Fatal(err)
	}
	trs := h2.transitions()
	if len(trs) != 1 || trs[0].Term != 2 || len(trs[0].Steps) != 1 {
		t.Fatalf("reloaded history %+v", trs)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC))
	h, err := loadHistory(t.TempDir(), clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range historyMax + 10 {
		h.add(api.Transition{At: clk.Now(), Term: uint64(i)})
	}
	if trs := h.transitions(); len(trs) != historyMax || trs[0].Term != 10 {
		t.Fatalf("history kept %d, first term %d", len(trs), trs[0].Term)
	}
}

func TestDamagedHistoryDoesNotStopTheNode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, historyFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := loadHistory(dir, clock.NewFake(time.Now()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || len(h.transitions()) != 0 {
		t.Fatalf("damaged history: %v", err)
	}
}

func TestSamplerKeepsTenMinutesAndCountsNewDrops(t *testing.T) {
	s := newSampler()
	for i := range sampleKeep + 5 {
		st := hbStatus(i%7 != 0, time.Duration(i)*time.Millisecond, uint64(i/10))
		drops := s.sample(st)
		if i%10 == 0 && i > 0 && drops["bad_mac"] != 1 {
			t.Fatalf("round %d: drops %v, want one new bad_mac", i, drops)
		}
		if i%10 != 0 && drops != nil {
			t.Fatalf("round %d: drops %v without new ones", i, drops)
		}
	}
	hist := s.history("hb")
	if len(hist) != sampleKeep || hist[len(hist)-1] != float64(sampleKeep+4) {
		t.Fatalf("history %v", hist)
	}
}

func hbStatus(up bool, rtt time.Duration, drops uint64) heartbeat.Status {
	return heartbeat.Status{Drops: map[string]uint64{"bad_mac": drops},
		Paths: []heartbeat.PathStatus{{Name: "hb", Up: up, RTT: rtt}}}
}
