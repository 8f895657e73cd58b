package pairbench

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Client sends an echo request to the VIP every period from the client
// namespace and records every reply with the time it arrived and the
// appliance that sent it.
type Client struct {
	fd   int
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	answers []Answer
	sendErr error
}

// StartClient starts sending to dst from ns. Close stops it.
func StartClient(ns netns.NsHandle, dst netip.AddrPort, period time.Duration) (*Client, error) {
	c := &Client{fd: -1, stop: make(chan struct{})}
	ready := make(chan error, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := MeasuringThread(ns); err != nil {
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

func (c *Client) send(dst netip.AddrPort, period time.Duration) {
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
		if err := unix.Sendto(c.fd, EncodeRequest(seq), 0, sa); err != nil {
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

func (c *Client) receive(ns netns.NsHandle) {
	defer c.wg.Done()
	_ = MeasuringThread(ns)
	buf := make([]byte, 64)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		now := time.Now()
		if err == nil {
			if _, from, ok := DecodeReply(buf[:n]); ok {
				c.mu.Lock()
				c.answers = append(c.answers, Answer{At: now, From: from})
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

// Snapshot returns a copy of the answers held.
func (c *Client) Snapshot() []Answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Answer(nil), c.answers...)
}

// Trim drops the answers received before t, so memory stays bounded over
// a long run.
func (c *Client) Trim(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := 0
	for cut < len(c.answers) && c.answers[cut].At.Before(t) {
		cut++
	}
	c.answers = append(c.answers[:0], c.answers[cut:]...)
}

// Last returns the most recent answer, if any.
func (c *Client) Last() (Answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.answers) == 0 {
		return Answer{}, false
	}
	return c.answers[len(c.answers)-1], true
}

// Close stops the client and closes its socket.
func (c *Client) Close() {
	close(c.stop)
	c.wg.Wait()
	unix.Close(c.fd)
}

// startResponder answers echo requests in one appliance's namespace, on
// any address (so on the VIP too, whichever node holds it), appending its
// appliance index; requests of another length get no answer.
func startResponder(h *lab.Host, index, port int) (*lab.Echo, error) {
	e, err := lab.StartUDPServer(h, "udp4", fmt.Sprintf(":%d", port), func(req []byte) []byte {
		if len(req) != 8 {
			return nil
		}
		return append(req[:8:8], byte(index))
	})
	if err != nil {
		return nil, fmt.Errorf("starting the echo responder on %s: %w", h.Name(), err)
	}
	return e, nil
}

// EchoPort is the responders' UDP port; the client sends to
// VIPAddr:EchoPort.
const EchoPort = 7009

// Echo is an echo responder on each appliance of an Env and a Client in
// the client namespace sending to the VIP.
type Echo struct {
	Client *Client
	resp   [2]*lab.Echo
}

// StartEcho starts the responders and a client sending every period.
func StartEcho(e *Env, period time.Duration) (x *Echo, err error) {
	x = &Echo{}
	defer func() {
		if err != nil {
			x.Close()
		}
	}()
	for i, h := range e.Pair.Appliances() {
		if x.resp[i], err = startResponder(h, i, EchoPort); err != nil {
			return nil, err
		}
	}
	x.Client, err = StartClient(e.Pair.Client.NsHandle(), netip.AddrPortFrom(netip.MustParseAddr(VIPAddr), EchoPort), period)
	return x, err
}

// Close stops the client and the responders started.
func (x *Echo) Close() {
	if x.Client != nil {
		x.Client.Close()
	}
	for _, r := range x.resp {
		if r != nil {
			_ = r.Close()
		}
	}
}
