package stats

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	orig := slices.Clone(xs)
	for _, c := range []struct{ p, want float64 }{{0, 1}, {25, 2}, {50, 3}, {95, 4.8}, {100, 5}, {10, 1.4}, {-5, 1}, {150, 5}} {
		if got := Percentile(xs, c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if !slices.Equal(xs, orig) {
		t.Errorf("Percentile reordered its input: %v", xs)
	}
	if got := Percentile([]float64{7}, 95); got != 7 {
		t.Errorf("one sample: %v, want 7", got)
	}
	if got := Percentile([]float64{10, 20}, 50); got != 15 {
		t.Errorf("two samples p50: %v, want 15", got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("no samples must give NaN")
	}
}

func TestDuration(t *testing.T) {
	ds := []time.Duration{50 * time.Millisecond, 10 * time.Millisecond, 40 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
	if got := Duration(ds, 50); got != 30*time.Millisecond {
		t.Errorf("p50 = %v", got)
	}
	if got := Duration(ds, 95); got != 48*time.Millisecond {
		t.Errorf("p95 = %v", got)
	}
	if got := Duration(nil, 50); got != 0 {
		t.Errorf("empty = %v", got)
	}
	if ds[0] != 50*time.Millisecond {
		t.Error("input was sorted in place")
	}
}
