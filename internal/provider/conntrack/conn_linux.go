package conntrack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// chunkBytes bounds one sendmsg of requests; the kernel handles each
// message of a chunk before sendmsg returns and queues one ack each.
const chunkBytes = 128 << 10

// Conn is a ctnetlink request socket in the network namespace of the
// thread that opened it. It is safe for concurrent use (requests are
// serialised).
type Conn struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
	out []byte
}

func openSocket(rcvbuf int) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return -1, fmt.Errorf("opening netfilter netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("binding netfilter netlink socket: %w", err)
	}
	setRcvBuf(fd, rcvbuf)
	return fd, nil
}

// setRcvBuf sets the receive buffer, beyond rmem_max when allowed.
func setRcvBuf(fd, n int) {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	}
}

// Open opens a request socket in the calling thread's network namespace
// (the process's unless the caller switched the thread, as lab.Host.Do does).
func Open() (*Conn, error) {
	fd, err := openSocket(8 << 20)
	if err != nil {
		return nil, err
	}
	// Acks carry only the header of the request they answer.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	tv := unix.Timeval{Sec: 10}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &Conn{fd: fd, buf: make([]byte, 1<<20), seq: uint32(time.Now().UnixNano())}, nil
}

// Close closes the socket.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

func (c *Conn) send(b []byte) error {
	for {
		err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sending ctnetlink request: %w", err)
		}
		return nil
	}
}

func (c *Conn) recv() ([]Message, error) {
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receiving ctnetlink answer: %w", err)
		}
		return SplitMessages(c.buf[:n])
	}
}

// Dump reads the whole table (every family).
func (c *Conn) Dump(ctx context.Context) ([]Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	if err := c.send(AppendDump(c.out[:0], seq)); err != nil {
		return nil, fmt.Errorf("dumping conntrack table: %w", err)
	}
	var out []Entry
	for {
		if err := ctx.Err(); err != nil {
			c.drainDump(seq)
			return nil, err
		}
		msgs, err := c.recv()
		if err != nil {
			return nil, fmt.Errorf("dumping conntrack table: %w", err)
		}
		for _, m := range msgs {
			if m.Seq != seq {
				continue
			}
			switch m.Type {
			case nlmsgDone:
				return out, nil
			case nlmsgError:
				if m.Errno != 0 {
					return nil, fmt.Errorf("dumping conntrack table: %w", syscall.Errno(m.Errno))
				}
				return out, nil
			case typeCTNew:
				e, err := DecodeEntry(m.Payload)
				if err != nil {
					continue
				}
				out = append(out, e)
			}
		}
	}
}

func (c *Conn) drainDump(seq uint32) {
	for range 100000 {
		msgs, err := c.recv()
		if err != nil {
			return
		}
		for _, m := range msgs {
			if m.Seq == seq && (m.Type == nlmsgDone || m.Type == nlmsgError) {
				return
			}
		}
	}
}

// Get reads the entry with k's key; ok is false when there is none.
func (c *Conn) Get(k Key) (Entry, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	q := Entry{Proto: k.Proto, Zone: k.Zone, Orig: k.Orig()}
	if err := c.send(AppendGet(c.out[:0], &q, seq)); err != nil {
		return Entry{}, false, err
	}
	var got *Entry
	for {
		msgs, err := c.recv()
		if err != nil {
			return Entry{}, false, err
		}
		for _, m := range msgs {
			if m.Seq != seq {
				continue
			}
			switch m.Type {
			case typeCTNew:
				e, err := DecodeEntry(m.Payload)
				if err != nil {
					return Entry{}, false, fmt.Errorf("reading conntrack entry %s: %w", k.Orig(), err)
				}
				got = &e
			case nlmsgError:
				if m.Errno == int32(unix.ENOENT) {
					return Entry{}, false, nil
				}
				if m.Errno != 0 {
					return Entry{}, false, fmt.Errorf("reading conntrack entry %s: %w", k.Orig(), syscall.Errno(m.Errno))
				}
				if got == nil {
					return Entry{}, false, nil
				}
				return *got, true, nil
			}
		}
	}
}

// Apply writes ops to the table in order, many per system call. Each op
// converges: a Create whose entry exists replaces it (delete, create), an
// Update of a missing entry creates it, a Delete of a missing entry counts
// as Missing. Kernel refusals are counted in Failed; the error is for
// socket failures only.
func (c *Conn) Apply(ctx context.Context, ops []Op) (ApplyStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var st ApplyStats
	var retry []Op
	for i := 0; i < len(ops); {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		j, b, base := i, c.out[:0], c.seq+1
		for ; j < len(ops) && len(b) < chunkBytes; j++ {
			c.seq++
			e := &ops[j].Entry
			switch ops[j].Kind {
			case OpCreate:
				b = AppendCreate(b, e, c.seq)
			case OpUpdate:
				b = AppendUpdate(b, e, c.seq)
			default:
				b = AppendDelete(b, e, c.seq)
			}
		}
		c.out = b
		errs, err := c.roundTrip(b, base, j-i)
		if err != nil {
			return st, fmt.Errorf("writing %d conntrack entries: %w", j-i, err)
		}
		for k, errno := range errs {
			op := ops[i+k]
			switch {
			case errno == 0:
				switch op.Kind {
				case OpCreate:
					st.Created++
				case OpUpdate:
					st.Updated++
				default:
					st.Deleted++
				}
			case op.Kind == OpCreate && errno == int32(unix.EEXIST):
				retry = append(retry, Op{Kind: OpDelete, Entry: op.Entry}, Op{Kind: OpCreate, Entry: op.Entry})
			case op.Kind == OpUpdate && errno == int32(unix.ENOENT):
				retry = append(retry, Op{Kind: OpCreate, Entry: op.Entry})
			case op.Kind == OpDelete && errno == int32(unix.ENOENT):
				st.Missing++
			default:
				st.Failed++
				if st.FirstErr == nil {
					st.FirstErr = fmt.Errorf("%s %s: %w", opName(op.Kind), op.Entry.Orig, syscall.Errno(errno))
				}
			}
		}
		i = j
	}
	if len(retry) == 0 {
		return st, nil
	}
	// Second pass: replacements and creations of missing entries. A
	// create that fails again is a real failure.
	b, base := c.out[:0], c.seq+1
	for _, op := range retry {
		c.seq++
		if op.Kind == OpDelete {
			b = AppendDelete(b, &op.Entry, c.seq)
		} else {
			b = AppendCreate(b, &op.Entry, c.seq)
		}
	}
	c.out = b
	errs, err := c.roundTripChunked(retry, b, base)
	if err != nil {
		return st, fmt.Errorf("replacing %d conntrack entries: %w", len(retry), err)
	}
	for k, errno := range errs {
		op := retry[k]
		switch {
		case op.Kind == OpDelete:
			// The create that follows tells.
		case errno == 0:
			if k > 0 && retry[k-1].Kind == OpDelete {
				st.Replaced++
			} else {
				st.Created++
			}
		default:
			st.Failed++
			if st.FirstErr == nil {
				st.FirstErr = fmt.Errorf("%s %s: %w", opName(op.Kind), op.Entry.Orig, syscall.Errno(errno))
			}
		}
	}
	return st, nil
}

func opName(k OpKind) string {
	switch k {
	case OpCreate:
		return "creating"
	case OpUpdate:
		return "updating"
	}
	return "deleting"
}

// roundTripChunked sends already-encoded requests for ops (base..) in
// chunks by walking message lengths, and collects the errnos.
func (c *Conn) roundTripChunked(ops []Op, b []byte, base uint32) ([]int32, error) {
	out := make([]int32, 0, len(ops))
	for len(b) > 0 {
		n, count := 0, 0
		for n < len(b) && n < chunkBytes {
			l := int(uint32(b[n]) | uint32(b[n+1])<<8 | uint32(b[n+2])<<16 | uint32(b[n+3])<<24)
			n += (l + 3) &^ 3
			count++
		}
		errs, err := c.roundTrip(b[:n], base, count)
		if err != nil {
			return out, err
		}
		out = append(out, errs...)
		b = b[n:]
		base += uint32(count)
	}
	return out, nil
}

// roundTrip sends b holding count requests with sequence numbers
// base..base+count-1 and returns each one's errno (0 = done).
func (c *Conn) roundTrip(b []byte, base uint32, count int) ([]int32, error) {
	if err := c.send(b); err != nil {
		return nil, err
	}
	errs := make([]int32, count)
	got := 0
	for got < count {
		msgs, err := c.recv()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Type != nlmsgError {
				continue
			}
			i := int(m.Seq - base)
			if i < 0 || i >= count {
				continue
			}
			errs[i] = m.Errno
			got++
		}
	}
	return errs, nil
}

// Flush deletes every entry of the table.
func (c *Conn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	e := encoder{b: c.out[:0]}
	h := e.header(typeCTDelete, flagRequest|flagAck, c.seq, afUnspec)
	e.finish(h)
	errs, err := c.roundTrip(e.b, c.seq, 1)
	if err != nil {
		return fmt.Errorf("flushing conntrack table: %w", err)
	}
	if errs[0] != 0 {
		return fmt.Errorf("flushing conntrack table: %w", syscall.Errno(errs[0]))
	}
	return nil
}

// ErrOverrun says the kernel dropped events because the receive buffer
// was full: the follower must resync from a dump.
var ErrOverrun = errors.New("conntrack events lost (receive buffer overrun)")

// Watcher follows the table's events (new, update, destroy).
type Watcher struct {
	fd     int
	rcvbuf int
	maxbuf int
	// Two sets of recvmmsg buffers: one goroutine receives into one set
	// while another decodes the other, so that the kernel's copy and the
	// decoding run side by side.
	sets [2]*recvSet
	msgs []Message
}

// recvSet is one recvmmsg call's buffers, and what it received.
type recvSet struct {
	bufs [][]byte
	iovs []unix.Iovec
	hdrs []unix.Mmsghdr
	n    int
	// overrun: events were lost here (ENOBUFS); n is 0 then.
	overrun bool
}

const (
	watchBatch  = 64
	watchBufLen = 8 << 10
)

// NewWatcher subscribes to conntrack events in the calling thread's
// network namespace with a receive buffer of rcvbuf bytes, which grows
// up to maxbuf after an overrun.
func NewWatcher(rcvbuf, maxbuf int) (*Watcher, error) {
	fd, err := openSocket(rcvbuf)
	if err != nil {
		return nil, err
	}
	for _, g := range []int{nfnlGroupCTNew, nfnlGroupCTUpdate, nfnlGroupCTDestroy} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, g); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("joining conntrack event group %d: %w", g, err)
		}
	}
	tv := unix.Timeval{Usec: 200000}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	w := &Watcher{fd: fd, rcvbuf: rcvbuf, maxbuf: max(maxbuf, rcvbuf)}
	for i := range w.sets {
		rs := &recvSet{bufs: make([][]byte, watchBatch), iovs: make([]unix.Iovec, watchBatch), hdrs: make([]unix.Mmsghdr, watchBatch)}
		for j := range rs.bufs {
			rs.bufs[j] = make([]byte, watchBufLen)
		}
		w.sets[i] = rs
	}
	return w, nil
}

// RcvBuf is the current receive buffer size asked for.
func (w *Watcher) RcvBuf() int { return w.rcvbuf }

// Close closes the socket; call it after Run returned.
func (w *Watcher) Close() error { return unix.Close(w.fd) }

// recv receives up to watchBatch messages into rs: it blocks for the
// first (up to the socket's receive timeout) and takes what else is
// queued.
func (w *Watcher) recv(rs *recvSet) (int, error) {
	for i := range rs.hdrs {
		rs.iovs[i].Base = &rs.bufs[i][0]
		rs.iovs[i].SetLen(len(rs.bufs[i]))
		rs.hdrs[i] = unix.Mmsghdr{}
		rs.hdrs[i].Hdr.Iov = &rs.iovs[i]
		rs.hdrs[i].Hdr.SetIovlen(1)
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(w.fd), uintptr(unsafe.Pointer(&rs.hdrs[0])),
		uintptr(len(rs.hdrs)), unix.MSG_WAITFORONE, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Run delivers events to handle until ctx ends. After an overrun it
// doubles the receive buffer (up to the maximum), calls overrun and
// goes on: the caller resyncs from a dump. handle and overrun are called
// from one goroutine, in the order the kernel sent the events.
func (w *Watcher) Run(ctx context.Context, handle func(Event), overrun func()) error {
	free := make(chan *recvSet, len(w.sets))
	full := make(chan *recvSet, len(w.sets))
	for _, rs := range w.sets {
		free <- rs
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rs := range full {
			w.deliver(rs, handle, overrun)
			free <- rs
		}
	}()
	defer func() { close(full); <-done }()
	for ctx.Err() == nil {
		rs := <-free
		n, err := w.recv(rs)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			free <- rs
			continue
		case errors.Is(err, unix.ENOBUFS):
			if w.rcvbuf < w.maxbuf {
				w.rcvbuf = min(2*w.rcvbuf, w.maxbuf)
				setRcvBuf(w.fd, w.rcvbuf)
			}
			// Tell at once, in order with the events before.
			rs.n, rs.overrun = 0, true
			full <- rs
			continue
		case err != nil:
			free <- rs
			return fmt.Errorf("receiving conntrack events: %w", err)
		}
		rs.n, rs.overrun = n, false
		full <- rs
	}
	return nil
}

// deliver decodes what rs received and hands the events on.
func (w *Watcher) deliver(rs *recvSet, handle func(Event), overrun func()) {
	if rs.overrun {
		overrun()
	}
	for i := range rs.n {
		h := &rs.hdrs[i]
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			// An event larger than the buffer: treat it as lost.
			overrun()
			continue
		}
		var err error
		w.msgs, err = appendMessages(w.msgs[:0], rs.bufs[i][:h.Len])
		if err != nil {
			continue
		}
		for _, m := range w.msgs {
			t, ok := EventOf(m)
			if !ok {
				continue
			}
			e, err := DecodeEntry(m.Payload)
			if err != nil {
				continue
			}
			handle(Event{Type: t, Entry: e})
		}
	}
}
