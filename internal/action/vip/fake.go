package vip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Fake is a Netlinker that keeps addresses and links in memory and records
// every call as a line such as "add eth0 10.0.0.100/24".
type Fake struct {
	mu        sync.Mutex
	calls     []string
	addrs     map[string][]netip.Prefix
	links     map[string]string // name -> "parent mac"
	conflicts map[netip.Addr]net.HardwareAddr
	fail      map[string]error
}

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{addrs: map[string][]netip.Prefix{}, links: map[string]string{},
		conflicts: map[netip.Addr]net.HardwareAddr{}, fail: map[string]error{}}
}

// SetConflict makes ProbeConflict report mac for ip (nil clears it).
func (f *Fake) SetConflict(ip netip.Addr, mac net.HardwareAddr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mac == nil {
		delete(f.conflicts, ip)
		return
	}
	f.conflicts[ip] = mac
}

// Fail makes the operation op ("add", "remove", "has", "announce", "probe",
// "macvlan", "del-link") return err; nil clears it.
func (f *Fake) Fail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, op)
		return
	}
	f.fail[op] = err
}

// Drop removes an address behind the action's back (drift).
func (f *Fake) Drop(iface string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs[iface] = slices.DeleteFunc(f.addrs[iface], func(q netip.Prefix) bool { return q == p })
}

// Put adds an address behind the action's back (a stale one).
func (f *Fake) Put(iface string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs[iface] = append(f.addrs[iface], p)
}

// Addresses returns what iface holds.
func (f *Fake) Addresses(iface string) []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs[iface])
}

// Links returns the macvlans, as "name parent mac" lines, sorted.
func (f *Fake) Links() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n, v := range f.links {
		out = append(out, n+" "+v)
	}
	slices.Sort(out)
	return out
}

// Calls returns the recorded calls and forgets them.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *Fake) record(op, format string, args ...any) error {
	f.calls = append(f.calls, op+" "+fmt.Sprintf(format, args...))
	return f.fail[op]
}

// AddAddress implements Netlinker.
func (f *Fake) AddAddress(ctx context.Context, iface string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("add", "%s %s", iface, p); err != nil {
		return err
	}
	if !slices.Contains(f.addrs[iface], p) {
		f.addrs[iface] = append(f.addrs[iface], p)
	}
	return nil
}

// RemoveAddress implements Netlinker.
func (f *Fake) RemoveAddress(ctx context.Context, iface string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("remove", "%s %s", iface, p); err != nil {
		return err
	}
	f.addrs[iface] = slices.DeleteFunc(f.addrs[iface], func(q netip.Prefix) bool { return q == p })
	return nil
}

// HasAddress implements Netlinker; it is not recorded (it only reads).
func (f *Fake) HasAddress(ctx context.Context, iface string, p netip.Prefix) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["has"]; err != nil {
		return false, err
	}
	return slices.Contains(f.addrs[iface], p), nil
}

// Announce implements Netlinker.
func (f *Fake) Announce(ctx context.Context, iface string, ip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.record("announce", "%s %s", iface, ip)
}

// ProbeConflict implements Netlinker.
// A conflict set for a MAC in ignore is not reported.
func (f *Fake) ProbeConflict(ctx context.Context, iface string, ip netip.Addr, timeout time.Duration, ignore ...net.HardwareAddr) (net.HardwareAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("probe", "%s %s", iface, ip); err != nil {
		return nil, err
	}
	mac := f.conflicts[ip]
	for _, m := range ignore {
		if m.String() == mac.String() {
			return nil, nil
		}
	}
	return mac, nil
}

// EnsureMacvlan implements Netlinker.
func (f *Fake) EnsureMacvlan(parent, name string, mac net.HardwareAddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("macvlan", "%s %s %s", parent, name, mac); err != nil {
		return err
	}
	f.links[name] = parent + " " + mac.String()
	return nil
}

// DeleteLink implements Netlinker; deleting a link drops its addresses.
func (f *Fake) DeleteLink(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("del-link", "%s", name); err != nil {
		return err
	}
	delete(f.links, name)
	delete(f.addrs, name)
	return nil
}
