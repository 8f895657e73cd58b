package configsync

import (
	"testing"
	"time"
)

func TestVersionOrder(t *testing.T) {
	for _, c := range []struct {
		a, b VV
		want Order
	}{
		{VV{}, VV{}, Equal},
		{VV{"a": 1}, VV{"a": 1, "b": 0}, Equal},
		{VV{"a": 1}, VV{}, After},
		{VV{}, VV{"b": 1}, Before},
		{VV{"a": 2, "b": 1}, VV{"a": 1, "b": 1}, After},
		{VV{"a": 2, "b": 1}, VV{"a": 1, "b": 2}, Concurrent},
		{VV{"a": 1}, VV{"b": 1}, Concurrent},
	} {
		if got := c.a.Compare(c.b); got != c.want {
			t.Errorf("%v vs %v: %v, want %v", c.a, c.b, got, c.want)
		}
	}
	m := VV{"a": 2, "b": 1}.Merge(VV{"a": 1, "b": 3})
	if m["a"] != 2 || m["b"] != 3 {
		t.Fatalf("merge %v", m)
	}
	if m.Compare(VV{"a": 2, "b": 1}) != After || m.Compare(VV{"a": 1, "b": 3}) != After {
		t.Fatal("a merge must dominate both")
	}
}

func TestHLCAndWinner(t *testing.T) {
	var h hlc
	now := time.Unix(100, 0)
	t1 := h.now(now)
	t2 := h.now(now)
	if t2 <= t1 {
		t.Fatal("hlc must be strictly increasing")
	}
	if h.now(now.Add(time.Second)) != now.Add(time.Second).UnixNano() {
		t.Fatal("a later wall time is taken as is")
	}
	a := Meta{At: 5, Node: "nva-a", Hash: "1"}
	b := Meta{At: 5, Node: "nva-b", Hash: "0"}
	if wins(a, b) || !wins(b, a) {
		t.Fatal("equal clocks: the higher node name wins")
	}
	if !wins(Meta{At: 6, Node: "nva-a"}, b) {
		t.Fatal("the later edit wins")
	}
}
