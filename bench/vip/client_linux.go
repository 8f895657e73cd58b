package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/batonha/baton/internal/lab"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// client sends an echo request to the VIP every period from the client
// namespace and records every reply with the time it arrived and the
// appliance that sent it.
type client struct {
	fd   int
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	answers []answer
	sendErr error
}

// startClient starts sending to dst from ns. Close stops it.
func startClient(ns netns.NsHandle, dst netip.AddrPort, period time.Duration) (*client, error) {
	c := &client{fd: -1, stop: make(chan struct{})}
	ready := make(chan error, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := pairbench.MeasuringThread(ns); err != nil {
			ready <- err
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			ready <- fmt.Errorf("opening the client's UDP socket: %w", err)
			return
		}
		c.fd = fd
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			ready <- fmt.Errorf("setting the client's receive timeout: %w", err)
			return
		}
		ready <- nil
		c.wg.Add(1)
		go c.receive(ns)
		c.send(dst, period)
	}()
	if err := <-ready; err != nil {
		close(c.stop)
		c.wg.Wait()
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		return nil, err
	}
	return c, nil
}

func (c *client) send(dst netip.AddrPort, period time.Duration) {
	sa := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
	start := time.Now()
	for seq := uint64(0); ; seq++ {
		select {
		case <-c.stop:
			return
		default:
		}
		// Nothing answers while the VIP has no owner (or its ARP entry is
		// incomplete): a failed send is part of the outage, not an error,
		// but the last one is kept for reports.
		if err := unix.Sendto(c.fd, encodeRequest(seq), 0, sa); err != nil {
			c.mu.Lock()
			c.sendErr = err
			c.mu.Unlock()
		}
		next := start.Add(time.Duration(seq+1) * period)
		if d := time.Until(next); d > 0 {
			ts := unix.NsecToTimespec(d.Nanoseconds())
			_ = unix.Nanosleep(&ts, nil)
		}
	}
}

func (c *client) receive(ns netns.NsHandle) {
	defer c.wg.Done()
	_ = pairbench.MeasuringThread(ns)
	buf := make([]byte, 64)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		now := time.Now()
		if err == nil {
			if _, from, ok := decodeReply(buf[:n]); ok {
				c.mu.Lock()
				c.answers = append(c.answers, answer{at: now, from: from})
				c.mu.Unlock()
			}
		}
		select {
		case <-c.stop:
			return
		default:
		}
	}
}

// snapshot returns a copy of the answers held.
func (c *client) snapshot() []answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]answer(nil), c.answers...)
}

// trim drops the answers received before t, so memory stays bounded over
// a long run.
func (c *client) trim(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := 0
	for cut < len(c.answers) && c.answers[cut].at.Before(t) {
		cut++
	}
	c.answers = append(c.answers[:0], c.answers[cut:]...)
}

// last returns the most recent answer, if any.
func (c *client) last() (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.answers) == 0 {
		return answer{}, false
	}
	return c.answers[len(c.answers)-1], true
}

// Close stops the client and closes its socket.
func (c *client) Close() {
	close(c.stop)
	c.wg.Wait()
	unix.Close(c.fd)
}

// responder answers echo requests in one appliance's namespace, on any
// address (so on the VIP too, whichever node holds it), appending its
// appliance index.
type responder struct {
	conn net.PacketConn
	done chan struct{}
}

func startResponder(h *lab.Host, index, port int) (*responder, error) {
	c, err := h.ListenPacket("udp4", fmt.Sprintf(":%d", port))
	if err != nil {
		return nil, fmt.Errorf("starting the echo responder on %s: %w", h.Name(), err)
	}
	r := &responder{conn: c, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 64)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if n != 8 {
				continue
			}
			_, _ = c.WriteTo(append(buf[:8:8], byte(index)), from)
		}
	}()
	return r, nil
}

func (r *responder) Close() {
	r.conn.Close()
	<-r.done
}
