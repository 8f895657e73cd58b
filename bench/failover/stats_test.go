package main

import (
	"testing"
	"time"
)

func TestProcParsers(t *testing.T) {
	ns, err := schedNS([]byte("123456789 5000 17\n"))
	if err != nil || ns != 123456789 {
		t.Errorf("schedNS = %d, %v; want 123456789", ns, err)
	}
	for _, bad := range []string{"", "1 2", "x 2 3"} {
		if _, err := schedNS([]byte(bad)); err == nil {
			t.Errorf("schedNS(%q) accepted", bad)
		}
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
