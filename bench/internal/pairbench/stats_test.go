package pairbench

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	orig := slices.Clone(xs)
	for _, c := range []struct{ p, want float64 }{{0, 1}, {25, 2}, {50, 3}, {95, 4.8}, {100, 5}, {10, 1.4}} {
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

func TestFormats(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{Decimal1(12.345), "12.3"},
		{Decimal1(0), "0.0"},
		{Decimal1(math.NaN()), "NaN"},
		{Decimal1(math.Inf(1)), "NaN"},
		{Decimal2(0.5), "0.50"},
		{Decimal2(1.005e3), "1005.00"},
		{Decimal2(math.NaN()), "NaN"},
		{Decimal3(0.0576), "0.058"},
		{Decimal2(math.Inf(-1)), "NaN"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if got := Millis(1500 * time.Microsecond); got != 1.5 {
		t.Errorf("Millis(1.5ms) = %v", got)
	}
}
