package feed

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
)

func TestPublishReachesEverySubscriberInOrder(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	h := New("a", clk, 8)
	s1, s2 := h.Subscribe(4, 0), h.Subscribe(4, 0)
	h.Publish(TypeTransition, map[string]string{"to": "ACTIVE"})
	h.Publish(TypePath, map[string]any{"path": "hb", "up": false})
	for _, s := range []*Sub{s1, s2} {
		ev := <-s.C()
		if ev.Seq != 1 || ev.Type != TypeTransition || ev.Node != "a" || !ev.At.Equal(clk.Now()) {
			t.Fatalf("first event %+v", ev)
		}
		var d map[string]string
		if err := json.Unmarshal(ev.Data, &d); err != nil || d["to"] != "ACTIVE" {
			t.Fatalf("data %s: %v", ev.Data, err)
		}
		if ev := <-s.C(); ev.Seq != 2 || ev.Type != TypePath {
			t.Fatalf("second event %+v", ev)
		}
	}
}

func TestSlowSubscriberIsDroppedAndCountedWithoutBlocking(t *testing.T) {
	h := New("a", nil, 8)
	slow, fast := h.Subscribe(2, 0), h.Subscribe(16, 0)
	for i := range 5 {
		h.Publish(TypeAction, i) // never blocks although slow reads nothing
	}
	n := 0
	for range slow.C() {
		n++
	}
	if n != 2 || !slow.Dropped() {
		t.Fatalf("slow subscriber got %d events, dropped=%v; want 2, true", n, slow.Dropped())
	}
	if len(fast.C()) != 5 {
		t.Fatalf("fast subscriber has %d events queued, want 5", len(fast.C()))
	}
	if st := h.Stats(); st.Dropped != 1 || st.Subscribers != 1 || st.Published != 5 {
		t.Fatalf("stats %+v", st)
	}
	h.Close(fast)
	h.Close(fast)
	if _, ok := <-fast.C(); !ok {
		t.Fatal("queued events must stay readable after Close")
	}
	if h.Stats().Dropped != 1 {
		t.Fatal("a subscriber that leaves is not a drop")
	}
}

func TestResumeAfterSequenceReplaysKeptEvents(t *testing.T) {
	h := New("a", nil, 3)
	for i := range 5 {
		h.Publish(TypeAction, i)
	}
	if all := h.Subscribe(8, 1); len(all.C()) != 3 || (<-all.C()).Seq != 3 {
		t.Fatal("the hub must keep the last 3 events (3, 4, 5)")
	}
	s := h.Subscribe(8, 3)
	if got := len(s.C()); got != 2 {
		t.Fatalf("resume after 3 queued %d events, want 2 (4 and 5)", got)
	}
	if ev := <-s.C(); ev.Seq != 4 {
		t.Fatalf("first resumed event %d, want 4", ev.Seq)
	}
}

func TestNilHubIgnoresPublish(t *testing.T) {
	var h *Hub
	h.Publish(TypeTransition, nil)
}
