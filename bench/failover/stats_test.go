package main

import (
	"testing"
	"time"
)

func TestProcParsers(t *testing.T) {
	stat := []byte("1234 (keep alived) S 1 1234 1234 0 -1 4194560 300 0 0 0 17 4 0 0 20 0 1 0 100 1000 200 18446744073709551615")
	n, err := cpuTicks(stat)
	if err != nil || n != 21 {
		t.Errorf("cpuTicks = %d, %v; want 21", n, err)
	}
	if _, err := cpuTicks([]byte("1234 (x) S 1")); err == nil {
		t.Error("short stat accepted")
	}
	rss, err := procKB([]byte("Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t    2048 kB\nThreads: 1\n"), "VmRSS")
	if err != nil || rss != 2048*1024 {
		t.Errorf("procKB VmRSS = %d, %v", rss, err)
	}
	pss, err := procKB([]byte("55d0-7ffc ---p 00000000 00:00 0  [rollup]\nRss:   9000 kB\nPss:   4242 kB\nPss_Anon:  100 kB\n"), "Pss")
	if err != nil || pss != 4242*1024 {
		t.Errorf("procKB Pss = %d, %v", pss, err)
	}
	if _, err := procKB([]byte("Name:\tkthread\n"), "VmRSS"); err == nil {
		t.Error("status without VmRSS accepted")
	}
}

func TestParseIntervals(t *testing.T) {
	ds, err := parseIntervals("1s, 100ms")
	if err != nil || len(ds) != 2 || ds[0] != time.Second || ds[1] != 100*time.Millisecond {
		t.Errorf("got %v %v", ds, err)
	}
	for _, bad := range []string{"", "5ms", "105ms", "fast"} {
		if _, err := parseIntervals(bad); err == nil {
			t.Errorf("parseIntervals(%q) accepted", bad)
		}
	}
}
