package pairbench

import (
	"math"
	"strconv"
	"time"

	"github.com/batonha/baton/internal/lab/stats"
)

// Percentile returns the p-th percentile (0..100) of xs, as every
// benchmark line reports it (stats.Percentile); NaN for no samples.
func Percentile(xs []float64, p float64) float64 { return stats.Percentile(xs, p) }

// Millis converts a duration to float milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Decimal1 formats a value with one decimal; NaN and infinities print as
// NaN.
func Decimal1(v float64) string { return fixed(v, 1) }

// Decimal2 formats a ratio with two decimals; NaN and infinities print as
// NaN.
func Decimal2(v float64) string { return fixed(v, 2) }

// Decimal3 formats a small value (CPU percent) with three decimals; NaN
// and infinities print as NaN.
func Decimal3(v float64) string { return fixed(v, 3) }

func fixed(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}
