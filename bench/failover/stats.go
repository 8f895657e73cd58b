package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile returns the p-th percentile (0..100) of xs by linear
// interpolation between closest ranks; NaN for no samples.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 1 {
		return s[0]
	}
	rank := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (rank-float64(lo))*(s[hi]-s[lo])
}

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// f1 formats a value with one decimal; NaN prints as NaN.
func f1(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// f2 formats a ratio with two decimals; NaN prints as NaN.
func f2(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

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

// vmRSS parses VmRSS (bytes) from /proc/PID/status.
func vmRSS(status []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "VmRSS:") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, "VmRSS:"))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parsing %q: want '<n> kB'", line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %q: %w", line, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmRSS line in status")
}

// parseIntervals parses "1s,100ms".
func parseIntervals(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, p := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("parsing -intervals entry %q: %w", p, err)
		}
		if d < 50*time.Millisecond {
			return nil, fmt.Errorf("-intervals entry %v: below baton's 50ms minimum", d)
		}
		if d%(10*time.Millisecond) != 0 {
			return nil, fmt.Errorf("-intervals entry %v: VRRPv3 counts in centiseconds", d)
		}
		out = append(out, d)
	}
	return out, nil
}

// notifyTime parses one line "<STATE> <unix seconds.nanoseconds>" written by
// the keepalived notify script.
func notifyTime(line string) (state string, t time.Time, err error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return "", time.Time{}, fmt.Errorf("parsing notify line %q: want STATE SECONDS.NANOS", line)
	}
	sec, frac, _ := strings.Cut(f[1], ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("parsing notify seconds %q: %w", sec, err)
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil || ns < 0 {
			return "", time.Time{}, fmt.Errorf("parsing notify nanoseconds %q: %w", frac, err)
		}
	}
	return f[0], time.Unix(s, ns), nil
}
