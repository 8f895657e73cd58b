package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, c := range []struct{ p, want float64 }{{0, 1}, {50, 3}, {100, 5}, {25, 2}, {95, 4.8}} {
		if got := percentile(xs, c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if xs[0] != 5 {
		t.Error("percentile sorted its input in place")
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing is not NaN")
	}
	if f1(math.NaN()) != "NaN" || f1(12.345) != "12.3" {
		t.Errorf("f1: %s %s", f1(math.NaN()), f1(12.345))
	}
}

func TestProcParsers(t *testing.T) {
	stat := []byte("1234 (keep alived) S 1 1234 1234 0 -1 4194560 300 0 0 0 17 4 0 0 20 0 1 0 100 1000 200 18446744073709551615")
	n, err := cpuTicks(stat)
	if err != nil || n != 21 {
		t.Errorf("cpuTicks = %d, %v; want 21", n, err)
	}
	if _, err := cpuTicks([]byte("1234 (x) S 1")); err == nil {
		t.Error("short stat accepted")
	}
	rss, err := vmRSS([]byte("Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t    2048 kB\nThreads: 1\n"))
	if err != nil || rss != 2048*1024 {
		t.Errorf("vmRSS = %d, %v", rss, err)
	}
	if _, err := vmRSS([]byte("Name:\tkthread\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
}

func TestNotifyTime(t *testing.T) {
	st, ts, err := notifyTime("MASTER 1763800000.123456789\n")
	if err != nil || st != "MASTER" || !ts.Equal(time.Unix(1763800000, 123456789)) {
		t.Errorf("got %s %v %v", st, ts, err)
	}
	_, ts, err = notifyTime("BACKUP 1763800000.5")
	if err != nil || ts.Nanosecond() != 500000000 {
		t.Errorf("short fraction: %v %v", ts, err)
	}
	for _, bad := range []string{"", "MASTER", "MASTER x.1", "MASTER 1.-5", "MASTER 1 2"} {
		if _, _, err := notifyTime(bad); err == nil {
			t.Errorf("notifyTime(%q) accepted", bad)
		}
	}
}

func FuzzNotifyTime(f *testing.F) {
	f.Add("MASTER 1763800000.123456789")
	f.Add("FAULT 0.")
	f.Add("BACKUP 99999999999999999999.1")
	f.Fuzz(func(t *testing.T, line string) {
		st, _, err := notifyTime(line)
		if err == nil && st == "" {
			t.Error("accepted a line without state")
		}
	})
}

func TestParseIntervals(t *testing.T) {
	ds, err := parseIntervals("1s, 100ms")
	if err != nil || len(ds) != 2 || ds[0] != time.Second || ds[1] != 100*time.Millisecond {
		t.Errorf("got %v %v", ds, err)
	}
	for _, bad := range []string{"", "10ms", "105ms", "fast"} {
		if _, err := parseIntervals(bad); err == nil {
			t.Errorf("parseIntervals(%q) accepted", bad)
		}
	}
}
