package main

import (
	"bytes"
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

// measuringThread locks the calling goroutine to its thread, enters ns and
// tries to raise the thread to SCHED_FIFO 1 (failing that, it carries on at
// normal priority). It never unlocks.
func measuringThread(ns netns.NsHandle) error {
	runtime.LockOSThread()
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("entering netns for measuring: %w", err)
	}
	_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}, 0)
	return nil
}

// observation is the time something was first seen, or an error.
type observation struct {
	at  time.Time
	err error
}

// probeUntil200 polls http://addr:port/ every period from a socket in ns
// until the answer is 200 or stop is closed. It sends on ready once its
// thread is set up and on the returned channel the time the first 200 was
// read.
func probeUntil200(ns netns.NsHandle, addr string, port int, period time.Duration, stop <-chan struct{}) (ready <-chan error, result <-chan observation) {
	readyc := make(chan error, 1)
	resc := make(chan observation, 1)
	ip := net.ParseIP(addr).To4()
	go func() {
		if err := measuringThread(ns); err != nil {
			readyc <- err
			return
		}
		readyc <- nil
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip)
		for {
			start := time.Now()
			if rawHTTPStatus(sa, 4*period) == 200 {
				resc <- observation{at: time.Now()}
				return
			}
			select {
			case <-stop:
				resc <- observation{err: errors.New("stopped before the probe answered 200")}
				return
			default:
			}
			if d := period - time.Since(start); d > 0 {
				ts := unix.NsecToTimespec(d.Nanoseconds())
				_ = unix.Nanosleep(&ts, nil)
			}
		}
	}()
	return readyc, resc
}

// rawHTTPStatus sends GET / over a blocking socket created on the calling
// thread and returns the status code, or 0 on any failure.
func rawHTTPStatus(sa *unix.SockaddrInet4, timeout time.Duration) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Connect(fd, sa); err != nil {
		return 0
	}
	if _, err := unix.Write(fd, []byte("GET / HTTP/1.0\r\nHost: probe\r\n\r\n")); err != nil {
		return 0
	}
	var buf [64]byte
	n := 0
	for n < 12 {
		k, err := unix.Read(fd, buf[n:])
		if err != nil || k <= 0 {
			return 0
		}
		n += k
	}
	// "HTTP/1.x NNN"
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.")) {
		return 0
	}
	code := 0
	for _, c := range buf[9:12] {
		if c < '0' || c > '9' {
			return 0
		}
		code = code*10 + int(c-'0')
	}
	return code
}

// watchAddr subscribes to IPv4 address notifications inside ns and reports
// the time an RTM_NEWADDR for ip arrives. If ip is already present when the
// subscription starts, that is an error: the watcher is armed on the node
// that does not hold it.
func watchAddr(ns netns.NsHandle, ip net.IP, stop <-chan struct{}) (ready <-chan error, result <-chan observation) {
	readyc := make(chan error, 1)
	resc := make(chan observation, 1)
	want := ip.To4()
	go func() {
		if err := measuringThread(ns); err != nil {
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
						resc <- observation{at: now}
						return
					}
				}
			} else if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				resc <- observation{err: fmt.Errorf("reading address notifications: %w", err)}
				return
			}
			select {
			case <-stop:
				resc <- observation{err: errors.New("stopped before the address appeared")}
				return
			default:
			}
		}
	}()
	return readyc, resc
}

// addrMsgHas reports whether an ifaddrmsg payload carries ip as IFA_LOCAL or
// IFA_ADDRESS.
func addrMsgHas(data []byte, ip net.IP) bool {
	if len(data) < unix.SizeofIfAddrmsg {
		return false
	}
	attrs, err := nl.ParseRouteAttr(data[unix.SizeofIfAddrmsg:])
	if err != nil {
		return false
	}
	for _, a := range attrs {
		if (a.Attr.Type == unix.IFA_LOCAL || a.Attr.Type == unix.IFA_ADDRESS) && net.IP(a.Value).Equal(ip) {
			return true
		}
	}
	return false
}
