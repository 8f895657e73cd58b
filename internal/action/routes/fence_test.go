package routes

import (
	"context"
	"errors"
	"testing"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
)

func TestAWSFencedWrites(t *testing.T) {
	fk := clock.NewFake(epoch)
	f := standardFake()
	// nva-b took over under token 7 and wrote the tables.
	b := newAWS(t, awsCfg(t.TempDir(), func(c *AWS) { c.LocalENI, c.PeerENI = peerENI, localENI }), f, fk)
	if err := drive(t, fk, func() error {
		return b.Activate(context.Background(), action.Takeover{Term: 3, Token: 7})
	}); err != nil {
		t.Fatalf("newer active: %v", err)
	}
	if got := f.Target(rtbA, "0.0.0.0/0"); got != peerENI {
		t.Fatalf("route → %s, want nva-b's %s", got, peerENI)
	}
	// A stale active (token 5, say after a freeze) must not write back.
	a := newAWS(t, awsCfg(t.TempDir(), nil), f, fk)
	err := drive(t, fk, func() error {
		return a.Activate(context.Background(), action.Takeover{Term: 2, Token: 5})
	})
	if !errors.Is(err, ErrStale) || !errors.Is(err, action.ErrFault) {
		t.Fatalf("stale writer: got %v, want a fault wrapping ErrStale", err)
	}
	if got := f.Target(rtbA, "0.0.0.0/0"); got != peerENI {
		t.Fatalf("stale writer changed the route to %s", got)
	}
	// A newer token (a later takeover by nva-a) may write.
	if err := drive(t, fk, func() error {
		return a.Activate(context.Background(), action.Takeover{Term: 4, Token: 8})
	}); err != nil {
		t.Fatalf("newer token refused: %v", err)
	}
	if got := f.Target(rtbA, "0.0.0.0/0"); got != localENI {
		t.Fatalf("route → %s, want %s", got, localENI)
	}
	// Without a witness (token 0) nothing is fenced or tagged.
	calls := len(f.Calls())
	c := newAWS(t, awsCfg(t.TempDir(), nil), f, fk)
	if err := activate(t, fk, c); err != nil {
		t.Fatal(err)
	}
	for _, op := range f.Calls()[calls:] {
		if op == "CreateTags" {
			t.Fatal("tagged without a fencing token")
		}
	}
}
