package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/vishvananda/netlink"
)

// keepalived runs Debian's keepalived (VRRPv3, unicast) on both appliances.
type keepalived struct {
	e     *env
	bin   string
	procs [2]*lab.Proc
	marks [2]int64
}

func newKeepalived(e *env, bin string) (*keepalived, error) {
	k := &keepalived{e: e, bin: bin}
	prio := [2]int{150, 100}
	for i := range 2 {
		dir := e.nodeDir(i)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
		notify := filepath.Join(dir, "notify.sh")
		script := fmt.Sprintf("#!/bin/sh\necho \"$1 $(date +%%s.%%N)\" >> %s\n", k.events(i))
		if err := os.WriteFile(notify, []byte(script), 0o755); err != nil {
			return nil, fmt.Errorf("writing notify script: %w", err)
		}
		if err := os.WriteFile(k.conf(i), keepalivedConf(i, prio[i], e.interval, notify), 0o644); err != nil {
			return nil, fmt.Errorf("writing keepalived config: %w", err)
		}
	}
	return k, nil
}

// keepalivedConf renders appliance i's configuration: both nodes start as
// BACKUP and elect by priority, VRRPv3 adverts go unicast over front, the
// VIP is a /24 on the bridged front interface. keepalived's defaults send
// five gratuitous ARPs on becoming master.
func keepalivedConf(i, prio int, interval time.Duration, notify string) []byte {
	adv := strconv.FormatFloat(interval.Seconds(), 'f', -1, 64)
	return fmt.Appendf(nil, `global_defs {
    router_id %[1]s
    script_user root
    enable_script_security
    vrrp_version 3
}

vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %[2]d
    advert_int %[3]s
    unicast_src_ip %[4]s
    unicast_peer {
        %[5]s
    }
    virtual_ipaddress {
        %[6]s dev eth0
    }
    notify_master "%[7]s MASTER"
    notify_backup "%[7]s BACKUP"
    notify_fault "%[7]s FAULT"
}
`, lab.ApplianceName(i), prio, adv, lab.FrontAddr(i), lab.FrontAddr(1-i), vipCIDR, notify)
}

func (k *keepalived) name() string          { return "keepalived" }
func (k *keepalived) conf(i int) string     { return filepath.Join(k.e.nodeDir(i), "keepalived.conf") }
func (k *keepalived) events(i int) string   { return filepath.Join(k.e.nodeDir(i), "events") }
func (k *keepalived) pidFile(i int) string  { return filepath.Join(k.e.nodeDir(i), "keepalived.pid") }
func (k *keepalived) vrrpFile(i int) string { return filepath.Join(k.e.nodeDir(i), "vrrp.pid") }
func (k *keepalived) logPath(i int) string  { return filepath.Join(k.e.nodeDir(i), "keepalived.log") }

// stableFor covers a restarted preferred node's master-down timer (3 x
// interval + skew) before it preempts.
func (k *keepalived) stableFor() time.Duration { return 4*k.e.interval + 500*time.Millisecond }

func (k *keepalived) start(i int) error {
	// Stale pid files make keepalived believe it is already running.
	for _, f := range []string{k.pidFile(i), k.vrrpFile(i)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing stale pid file: %w", err)
		}
	}
	argv := []string{k.bin, "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp", "--dont-respawn",
		"--use-file", k.conf(i), "--pid", k.pidFile(i), "--vrrp_pid", k.vrrpFile(i)}
	p, err := k.e.pair.Appliances()[i].Start("keepalived-"+lab.ApplianceName(i), argv, nil, k.logPath(i))
	if err != nil {
		return err
	}
	k.procs[i] = p
	return nil
}

// vrrpPID reads the VRRP child's pid file and checks the child is alive.
func (k *keepalived) vrrpPID(i int) (int, error) {
	b, err := os.ReadFile(k.vrrpFile(i))
	if err != nil {
		return 0, fmt.Errorf("reading VRRP pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parsing VRRP pid file %s: %w", k.vrrpFile(i), err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, fmt.Errorf("VRRP child %d: %w", pid, err)
	}
	return pid, nil
}

// lastEvent returns the last state the notify script recorded.
func (k *keepalived) lastEvent(i int) string {
	f, err := os.Open(k.events(i))
	if err != nil {
		return ""
	}
	defer f.Close()
	var st string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s, _, ok := strings.Cut(sc.Text(), " "); ok {
			st = s
		}
	}
	return st
}

// settled: both processes and their VRRP children alive, the VIP holder's
// last notification MASTER and the other's BACKUP.
func (k *keepalived) settled() (int, bool, string) {
	for i := range 2 {
		if k.procs[i] == nil || k.procs[i].Exited() {
			return -1, false, lab.ApplianceName(i) + ": keepalived not running"
		}
		if _, err := k.vrrpPID(i); err != nil {
			return -1, false, lab.ApplianceName(i) + ": " + err.Error()
		}
	}
	holder, why := k.e.holder()
	if holder < 0 {
		return -1, false, why
	}
	if st := k.lastEvent(holder); st != "MASTER" {
		return -1, false, fmt.Sprintf("%s holds the VIP but last notified %q", lab.ApplianceName(holder), st)
	}
	if st := k.lastEvent(1 - holder); st != "BACKUP" {
		return -1, false, fmt.Sprintf("%s last notified %q, not BACKUP", lab.ApplianceName(1-holder), st)
	}
	return holder, true, ""
}

func (k *keepalived) fail(i int, v variant) error {
	switch v {
	case variantKill:
		// The VRRP child first: killing only the parent makes the child
		// exit gracefully (priority-0 advert), which is not a crash.
		pid, err := k.vrrpPID(i)
		if err != nil {
			return err
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("killing VRRP child %d: %w", pid, err)
		}
		return k.procs[i].Signal(syscall.SIGKILL)
	case variantLinkDown:
		return k.e.setLinks(i, false)
	}
	return fmt.Errorf("unknown variant %q", v)
}

func (k *keepalived) restore(i int, v variant) error {
	switch v {
	case variantKill:
		select {
		case <-k.procs[i].Done():
		case <-time.After(5 * time.Second):
			return fmt.Errorf("keepalived on %s did not die", lab.ApplianceName(i))
		}
		// A SIGKILLed master keeps its VIP: remove it as a reboot would.
		if err := delAddr(k.e.pair.Appliances()[i], lab.IfFront, vipCIDR); err != nil {
			return err
		}
		return k.start(i)
	case variantLinkDown:
		return k.e.setLinks(i, true)
	}
	return fmt.Errorf("unknown variant %q", v)
}

func (k *keepalived) logTail(i int) string { return tail(k.logPath(i), 12) }

// delAddr removes cidr from ifname on h if present.
func delAddr(h *lab.Host, ifname, cidr string) error {
	link, err := h.Handle().LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("finding %s on %s: %w", ifname, h.Name(), err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", cidr, err)
	}
	if err := h.Handle().AddrDel(link, a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("removing stale %s from %s/%s: %w", cidr, h.Name(), ifname, err)
	}
	return nil
}

func (k *keepalived) mark(i int) { k.marks[i] = fileSize(k.events(i)) }

// detail reports when the node's notify_master script ran.
func (k *keepalived) detail(i int, t0 time.Time) string {
	var master time.Time
	for _, line := range sinceMark(k.events(i), k.marks[i]) {
		st, at, ok := strings.Cut(line, " ")
		if !ok || st != "MASTER" {
			continue
		}
		sec, frac, _ := strings.Cut(at, ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ns, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		if err1 == nil && err2 == nil {
			master = time.Unix(s, ns)
			break
		}
	}
	return "notify MASTER " + rel(master, t0)
}
