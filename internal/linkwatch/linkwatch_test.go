package linkwatch

import (
	"context"
	"testing"
)

func TestWatchFiltersAndPassesOnlyChanges(t *testing.T) {
	f := NewFake("eth0", "eth1", "lo")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Update, 16)
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, f, []string{"eth0", "eth1"}, out) }()
	<-f.Watching()
	got := map[string]bool{}
	for range 2 {
		u := <-out
		got[u.Name] = u.Up
	}
	if len(got) != 2 || !got["eth0"] || !got["eth1"] {
		t.Fatalf("initial state %v, want eth0 and eth1 up", got)
	}
	f.Set("lo", false)   // not watched
	f.Set("eth0", true)  // no change
	f.Set("eth0", false) // change
	f.Set("eth0", true)  // change
	for _, want := range []Update{{"eth0", false}, {"eth0", true}} {
		if u := <-out; u != want {
			t.Fatalf("update %+v, want %+v", u, want)
		}
	}
	select {
	case u := <-out:
		t.Fatalf("unexpected update %+v", u)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
