package main

import (
	"net/netip"
	"testing"

	"github.com/batonha/baton/internal/provider/conntrack"
)

func TestExternalCount(t *testing.T) {
	out := []byte("cache:internal\tactive objects:\t\t           7\n\tactive/total entries:\t\t 0/0\n\ncache:external\tactive objects:\t\t       50000\n")
	n, err := externalCount(out)
	if err != nil || n != 50000 {
		t.Fatalf("got %d %v", n, err)
	}
	if _, err := externalCount([]byte("nothing")); err == nil {
		t.Fatal("garbage parsed")
	}
}

func TestSyntheticTuplesAreDistinct(t *testing.T) {
	ops := synthetic(130000, 0, netip.MustParseAddr("10.100.3.1"))
	orig, reply := map[conntrack.Tuple]bool{}, map[conntrack.Tuple]bool{}
	for _, op := range ops {
		if orig[op.Entry.Orig] || reply[op.Entry.Reply] {
			t.Fatalf("duplicate tuple %v", op.Entry)
		}
		orig[op.Entry.Orig], reply[op.Entry.Reply] = true, true
		if _, _, ok := op.Entry.SNAT(); !ok {
			t.Fatal("entry without SNAT")
		}
	}
}
