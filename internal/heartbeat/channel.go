package heartbeat

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/retry"
)

// A channel frame is a 2-byte length and the message; minFrame is the
// shortest message a frame may hold.
const (
	frameHeader = 2
	minFrame    = fixedSize + 2
)

// outConn is the connection we dialed to the peer; we only write to it.
type outConn struct {
	c        net.Conn
	wmu      sync.Mutex
	deadline time.Time // the write deadline set (guarded by wmu)
}

// write sends one frame (length and message). A socket deadline bounds a
// write to a peer that stopped reading to between max(timeout, 1s) and
// twice that: it is moved only when less than the bound is left, not on
// every message (each move is a timer change in the runtime). It is real
// time because it limits I/O, not protocol timing.
func (o *outConn) write(frame []byte, timeout time.Duration) error {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	bound := max(timeout, time.Second)
	if now := time.Now(); o.deadline.Sub(now) < bound {
		o.deadline = now.Add(2 * bound)
		if err := o.c.SetWriteDeadline(o.deadline); err != nil {
			return fmt.Errorf("setting peer channel write deadline: %w", err)
		}
	}
	if _, err := o.c.Write(frame); err != nil {
		// The connection is broken; closing it wakes dialLoop to redial.
		_ = o.c.Close()
		return fmt.Errorf("writing to peer channel: %w", err)
	}
	return nil
}

// inConn is a connection the peer dialed to us; we only read from it.
type inConn struct {
	c             net.Conn
	authenticated bool   // carried a valid message (guarded by Monitor.mu)
	epoch         uint64 // epoch of the last valid message (guarded by Monitor.mu)
	stale         bool   // accepted before the peer was found gone (guarded by Monitor.mu)
}

func (m *Monitor) keepAlive() net.KeepAliveConfig {
	// Linux counts keepalive idle and interval in whole seconds.
	return net.KeepAliveConfig{
		Enable:   true,
		Idle:     max(m.cfg.Interval, time.Second),
		Interval: max(m.cfg.Interval, time.Second),
		Count:    max(m.cfg.Misses, 2),
	}
}

// userTimeout is how long sent data may stay unacknowledged before the
// kernel drops a connection.
func (m *Monitor) userTimeout() time.Duration {
	return max(time.Duration(m.cfg.Misses)*m.cfg.Interval, time.Second)
}

// tune sets the options every channel connection gets.
func (m *Monitor) tune(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	if err := tc.SetNoDelay(true); err != nil {
		m.log.Debug("setting TCP_NODELAY on peer channel", "err", err)
	}
	if err := tc.SetKeepAliveConfig(m.keepAlive()); err != nil {
		m.log.Debug("setting keepalive on peer channel", "err", err)
	}
	if rc, err := tc.SyscallConn(); err == nil {
		if err := setUserTimeout(rc, m.userTimeout()); err != nil {
			m.log.Debug("setting TCP user timeout on peer channel", "err", err)
		}
	}
}

// dialLoop keeps one outbound connection to the peer, redialling with a
// backoff that doubles up to the interval.
func (m *Monitor) dialLoop(ctx context.Context) {
	redial := retry.Doubling{First: max(m.cfg.Interval/8, 5*time.Millisecond), Max: m.cfg.Interval}
	d := net.Dialer{Timeout: m.userTimeout()}
	p := m.byName[ChannelPath]
	quick := 0 // connections in a row that closed within an interval
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", m.cfg.Channel.Address)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.mu.Lock()
			p.lastErr = fmt.Sprintf("dialing peer channel %s: %v", m.cfg.Channel.Address, err)
			m.mu.Unlock()
			if !m.sleep(ctx, redial.Next()) {
				return
			}
			continue
		}
		connected := time.Now() // real time: measures how long the connection lasted
		m.tune(c)
		oc := &outConn{c: c}
		m.mu.Lock()
		if !m.running {
			m.mu.Unlock()
			_ = c.Close()
			return
		}
		m.out = oc
		m.mu.Unlock()
		m.log.Debug("peer channel connected", "address", m.cfg.Channel.Address)
		// Speak at once so the peer's channel path comes up without
		// waiting for the next tick.
		m.send(false, true)
		// The peer never writes here: this read returns when the
		// connection closes or breaks.
		_, err = io.Copy(io.Discard, c)
		m.mu.Lock()
		if m.out == oc {
			m.out = nil
		}
		m.mu.Unlock()
		_ = c.Close()
		if ctx.Err() != nil {
			return
		}
		// Redial at once: a peer that restarted is listening again, and
		// one that died refuses, which leads to the backoff above. Only a
		// peer that keeps closing fresh connections is redialled slowly.
		m.log.Debug("peer channel connection lost", "err", err)
		if time.Since(connected) < m.cfg.Interval {
			quick++
		} else {
			quick = 0
			redial.Reset()
		}
		if quick > 1 {
			if !m.sleep(ctx, redial.Next()) {
				return
			}
		}
	}
}

// acceptLoop accepts the peer's connections.
func (m *Monitor) acceptLoop(ctx context.Context, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			m.log.Warn("accepting peer channel connection", "err", err)
			if !m.sleep(ctx, m.cfg.Interval) {
				return
			}
			continue
		}
		m.mu.Lock()
		if len(m.inbound) >= maxInbound {
			// Make room by evicting a connection that has not proved
			// itself, so strangers cannot lock the peer out.
			for ic := range m.inbound {
				if !ic.authenticated {
					delete(m.inbound, ic)
					_ = ic.c.Close()
					m.dropLocked(DropChannelFull, errors.New("peer channel full: an unauthenticated connection evicted"))
					break
				}
			}
		}
		if !m.running || len(m.inbound) >= maxInbound {
			if m.running {
				m.dropLocked(DropChannelFull, errors.New("peer channel full: connection closed"))
			}
			m.mu.Unlock()
			_ = c.Close()
			continue
		}
		ic := &inConn{c: c}
		m.inbound[ic] = struct{}{}
		m.mu.Unlock()
		m.tune(c)
		m.wg.Go(func() { m.readInbound(ic) })
	}
}

// readInbound reads frames from one accepted connection.
func (m *Monitor) readInbound(ic *inConn) {
	defer func() {
		m.mu.Lock()
		delete(m.inbound, ic)
		if m.currentIn == ic {
			m.currentIn = nil
		}
		m.mu.Unlock()
		_ = ic.c.Close()
	}()
	// A connection must prove itself within a few intervals; after that it
	// is kept until it closes or the kernel drops it.
	_ = ic.c.SetReadDeadline(time.Now().Add(max(m.userTimeout(), 2*time.Second)))
	authenticated := false
	var hdr [frameHeader]byte
	buf := make([]byte, MaxMessageSize)
	ms, intern := newMACs(m.cfg.Keys), m.internName
	// Buffered: a frame's length and message come in one read.
	r := bufio.NewReaderSize(ic.c, 4*(frameHeader+MaxMessageSize))
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			m.inboundClosed(ic, err)
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n < minFrame || n > MaxMessageSize {
			// The stream is out of step and cannot be resynchronised.
			m.drop(DropMalformed, fmt.Errorf("peer channel frame of %d bytes", n))
			return
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			m.inboundClosed(ic, err)
			return
		}
		msg, err := decode(buf[:n], ms, intern)
		if err != nil {
			m.drop(dropReason(err), err)
			continue
		}
		if m.handle(msg, KindChannel, ic) && !authenticated {
			authenticated = true
			_ = ic.c.SetReadDeadline(time.Time{})
		}
	}
}

// inboundClosed handles the end of an accepted connection. If the peer
// closed or reset the connection that carried its latest messages, its
// process is gone.
func (m *Monitor) inboundClosed(ic *inConn, err error) {
	reset := errors.Is(err, syscall.ECONNRESET)
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !reset {
		m.log.Debug("peer channel connection failed", "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running || m.gone || m.currentIn != ic || !ic.authenticated || ic.epoch != m.replay.epoch {
		return
	}
	if !reset {
		m.goneLocked(ic.epoch, false, "peer channel closed")
		return
	}
	// Anyone on the path can forge a reset; a killed process closes with a
	// FIN. The peer is gone only if nothing newer arrives in time.
	epoch, top := m.replay.epoch, m.replay.top
	m.log.Info("peer channel reset; gone unless a newer heartbeat arrives", "epoch", epoch, "seq", top)
	m.clk.AfterFunc(m.cfg.Interval*3/2, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.running || m.gone || m.replay.epoch != epoch || m.replay.top != top {
			return
		}
		m.goneLocked(epoch, false, "peer channel reset and nothing newer heard")
	})
}
