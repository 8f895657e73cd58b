package heartbeat

// verdict is what the replay window says about a sequence number.
type verdict uint8

const (
	accepted   verdict = iota
	replayed           // already seen, or older than the window
	staleEpoch         // from an epoch older than the newest seen
)

// replayWindow remembers which sequence numbers of the newest epoch have
// been seen, within a sliding window of size numbers ending at the highest
// one (a bitmap ring, in the manner of IPsec anti-replay).
type replayWindow struct {
	size  uint64
	epoch uint64
	top   uint64 // highest sequence number seen in epoch
	fresh bool   // nothing seen yet in epoch
	known bool   // an epoch has been seen
	bits  []uint64
}

func newReplayWindow(size int) *replayWindow {
	if size < 1 {
		size = 1
	}
	words := (size + 63) / 64
	return &replayWindow{size: uint64(size), fresh: true, bits: make([]uint64, words)}
}

func (w *replayWindow) nbits() uint64 { return uint64(len(w.bits)) * 64 }

func (w *replayWindow) test(seq uint64) bool {
	i := seq % w.nbits()
	return w.bits[i/64]&(1<<(i%64)) != 0
}

func (w *replayWindow) set(seq uint64) {
	i := seq % w.nbits()
	w.bits[i/64] |= 1 << (i % 64)
}

func (w *replayWindow) clear(seq uint64) {
	i := seq % w.nbits()
	w.bits[i/64] &^= 1 << (i % 64)
}

func (w *replayWindow) reset(epoch uint64) {
	clear(w.bits)
	w.epoch, w.top, w.fresh = epoch, 0, true
}

// newest reports whether seq, just accepted by check, is the highest of
// its epoch so far (an accepted older one filled a gap).
func (w *replayWindow) newest(seq uint64) bool { return seq == w.top }

// check decides on (epoch, seq) and, when it is accepted, records it.
func (w *replayWindow) check(epoch, seq uint64) verdict {
	switch {
	case !w.known:
		w.known = true
		w.reset(epoch)
	case epoch < w.epoch:
		return staleEpoch
	case epoch > w.epoch:
		w.reset(epoch)
	}
	if w.fresh {
		w.fresh = false
		w.top = seq
		w.set(seq)
		return accepted
	}
	if seq > w.top {
		if seq-w.top >= w.nbits() {
			clear(w.bits)
		} else {
			for s := w.top + 1; s <= seq; s++ {
				w.clear(s)
			}
		}
		w.top = seq
		w.set(seq)
		return accepted
	}
	if w.top-seq >= w.size || w.test(seq) {
		return replayed
	}
	w.set(seq)
	return accepted
}
