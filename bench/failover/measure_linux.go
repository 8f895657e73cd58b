package main

import (
	"bytes"
	"errors"
	"net"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// probeUntil200 polls http://addr:port/ every period from a socket in ns,
// on a pairbench measuring thread, until the answer is 200 or stop is
// closed. It sends on ready once its thread is set up and on the returned
// channel the time the first 200 was read.
func probeUntil200(ns netns.NsHandle, addr string, port int, period time.Duration, stop <-chan struct{}) (ready <-chan error, result <-chan pairbench.Observation) {
	readyc := make(chan error, 1)
	resc := make(chan pairbench.Observation, 1)
	ip := net.ParseIP(addr).To4()
	go func() {
		if err := pairbench.MeasuringThread(ns); err != nil {
			readyc <- err
			return
		}
		readyc <- nil
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip)
		for {
			start := time.Now()
			if rawHTTPStatus(sa, 4*period) == 200 {
				resc <- pairbench.Observation{At: time.Now()}
				return
			}
			select {
			case <-stop:
				resc <- pairbench.Observation{Err: errors.New("stopped before the probe answered 200")}
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
