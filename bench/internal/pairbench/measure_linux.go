package pairbench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The measuring helpers run on their own OS thread, switched into the
// namespace they observe and raised to SCHED_FIFO priority 1, so that CPU
// contention from the daemons under test does not delay the timestamps.
// Each thread stays locked until its goroutine ends, so the runtime throws
// it away rather than reusing a thread in a foreign namespace or class.

// MeasuringThread locks the calling goroutine to its thread, enters ns and
// tries to raise the thread to SCHED_FIFO 1 (failing that, it carries on at
// normal priority). It never unlocks: call it only from a goroutine that
// ends when its measuring is done.
func MeasuringThread(ns netns.NsHandle) error {
	runtime.LockOSThread()
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("entering netns for measuring: %w", err)
	}
	_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}, 0)
	return nil
}

// Observation is the time something was first seen, or an error.
type Observation struct {
	At  time.Time
	Err error
}

// WatchAddr subscribes to IPv4 address notifications inside ns and reports
// the time an RTM_NEWADDR for ip arrives. It sends on ready once
// subscribed and then, on result, the first such time, an error reading
// the notifications, or an error once stop is closed. The caller checks
// that ip was absent after ready: an address already present is not
// announced again.
func WatchAddr(ns netns.NsHandle, ip net.IP, stop <-chan struct{}) (ready <-chan error, result <-chan Observation) {
	readyc := make(chan error, 1)
	resc := make(chan Observation, 1)
	want := ip.To4()
	go func() {
		if err := MeasuringThread(ns); err != nil {
			readyc <- err
			return
		}
		s, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_IFADDR)
		if err != nil {
			readyc <- fmt.Errorf("subscribing to address notifications: %w", err)
			return
		}
		defer s.Close()
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		if err := s.SetReceiveTimeout(&tv); err != nil {
			readyc <- fmt.Errorf("setting receive timeout on the netlink socket: %w", err)
			return
		}
		readyc <- nil
		for {
			msgs, _, err := s.Receive()
			now := time.Now()
			if err == nil {
				for _, m := range msgs {
					if m.Header.Type == unix.RTM_NEWADDR && addrMsgHas(m.Data, want) {
						resc <- Observation{At: now}
						return
					}
				}
			} else if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				resc <- Observation{Err: fmt.Errorf("reading address notifications: %w", err)}
				return
			}
			select {
			case <-stop:
				resc <- Observation{Err: errors.New("stopped before the address appeared")}
				return
			default:
			}
		}
	}()
	return readyc, resc
}

// addrMsgHas reports whether an ifaddrmsg payload carries ip as IFA_LOCAL or
// IFA_ADDRESS. It walks the attributes itself: nl.ParseRouteAttr panics on
// an attribute whose padding runs past the end of the message.
func addrMsgHas(data []byte, ip net.IP) bool {
	if len(data) < unix.SizeofIfAddrmsg {
		return false
	}
	b := data[unix.SizeofIfAddrmsg:]
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4])
		if n < unix.SizeofRtAttr || n > len(b) {
			return false
		}
		if (typ == unix.IFA_LOCAL || typ == unix.IFA_ADDRESS) && net.IP(b[unix.SizeofRtAttr:n]).Equal(ip) {
			return true
		}
		next := (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if next >= len(b) {
			return false
		}
		b = b[next:]
	}
	return false
}
