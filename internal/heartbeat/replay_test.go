package heartbeat

import "testing"

func TestReplayWindow(t *testing.T) {
	type step struct {
		epoch, seq uint64
		want       verdict
	}
	cases := []struct {
		name  string
		size  int
		steps []step
	}{
		{"in order", 64, []step{{1, 1, accepted}, {1, 2, accepted}, {1, 3, accepted}}},
		{"duplicate", 64, []step{{1, 5, accepted}, {1, 5, replayed}}},
		{"out of order within window", 64, []step{{1, 10, accepted}, {1, 8, accepted}, {1, 9, accepted}, {1, 8, replayed}, {1, 10, replayed}}},
		{"first seq may be anything", 64, []step{{7, 1000, accepted}, {7, 999, accepted}}},
		{"edge of window", 64, []step{{1, 100, accepted}, {1, 37, accepted}, {1, 36, replayed}}},
		{"too old after a jump", 64, []step{{1, 1, accepted}, {1, 500, accepted}, {1, 2, replayed}, {1, 499, accepted}}},
		{"jump beyond the ring clears it", 64, []step{{1, 1, accepted}, {1, 1 + 128, accepted}, {1, 1 + 128 - 63, accepted}}},
		{"bits are cleared when sliding", 64, []step{{1, 3, accepted}, {1, 3 + 64, accepted}, {1, 3 + 64 + 1, accepted}}},
		{"window not a multiple of 64", 100, []step{{1, 200, accepted}, {1, 101, accepted}, {1, 100, replayed}}},
		{"new epoch resets", 64, []step{{1, 50, accepted}, {2, 1, accepted}, {2, 1, replayed}, {2, 2, accepted}}},
		{"old epoch is stale", 64, []step{{5, 1, accepted}, {4, 100, staleEpoch}, {5, 2, accepted}}},
		{"back to an old epoch after a new one", 64, []step{{1, 1, accepted}, {2, 1, accepted}, {1, 2, staleEpoch}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newReplayWindow(c.size)
			for i, s := range c.steps {
				if got := w.check(s.epoch, s.seq); got != s.want {
					t.Fatalf("step %d check(%d, %d) = %d, want %d", i, s.epoch, s.seq, got, s.want)
				}
			}
		})
	}
}

func TestReplayWindowEverySeqOnce(t *testing.T) {
	w := newReplayWindow(128)
	// Deliver 1..2000 with local reordering: every number once is accepted,
	// and a second delivery of any of them is refused.
	for base := uint64(1); base <= 2000; base += 4 {
		for _, d := range []uint64{2, 0, 3, 1} {
			if got := w.check(9, base+d); got != accepted {
				t.Fatalf("first delivery of %d: %d", base+d, got)
			}
		}
		for d := uint64(0); d < 4; d++ {
			if got := w.check(9, base+d); got != replayed {
				t.Fatalf("second delivery of %d: %d", base+d, got)
			}
		}
	}
}
