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

// schedNS parses the time on a CPU (nanoseconds, the first field) from a
// /proc/PID/task/TID/schedstat line.
func schedNS(schedstat []byte) (uint64, error) {
	f := strings.Fields(string(schedstat))
	if len(f) != 3 {
		return 0, fmt.Errorf("parsing schedstat %q: want 3 fields", schedstat)
	}
	ns, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing schedstat %q: %w", schedstat, err)
	}
	return ns, nil
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
