package main

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/batonha/baton/internal/heartbeat"
)

// intervalName prints 100ms and 1s like the flag spells them.
func intervalName(d time.Duration) string { return d.String() }

// cpuTicks parses utime+stime (clock ticks) from a /proc/PID/stat line.
func cpuTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parsing /proc stat: no ')' in %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parsing /proc stat: %d fields after comm, want >= 13", len(f))
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing utime %q: %w", f[11], err)
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing stime %q: %w", f[12], err)
	}
	return u + s, nil
}

// procKB parses the "<key>: <n> kB" line of a /proc file such as
// status (VmRSS) or smaps_rollup (Pss) and returns it in bytes.
func procKB(b []byte, key string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key+":") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, key+":"))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parsing %q: want '<n> kB'", line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %q: %w", line, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no %s line", key)
}

// parseIntervals parses "1s,100ms".
func parseIntervals(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, p := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("parsing -intervals entry %q: %w", p, err)
		}
		if d < heartbeat.MinInterval {
			return nil, fmt.Errorf("-intervals entry %v: below baton's %v minimum", d, heartbeat.MinInterval)
		}
		if d%(10*time.Millisecond) != 0 {
			return nil, fmt.Errorf("-intervals entry %v: VRRPv3 counts in centiseconds", d)
		}
		out = append(out, d)
	}
	return out, nil
}
