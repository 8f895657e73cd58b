package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	if got := percentile(ds, 50); got != 3 {
		t.Fatalf("p50 = %v", got)
	}
	if got := percentile(ds, 100); got != 5 {
		t.Fatalf("p100 = %v", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Fatalf("empty = %v", got)
	}
	if ds[0] != 5 {
		t.Fatal("input was sorted in place")
	}
}
