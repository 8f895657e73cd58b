package pairbench

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

// Keepalived runs Debian's keepalived (VRRPv3, unicast) on both appliances
// of an Env, holding VIPCIDR, with a notify script that records every
// state change in a per-node events file.
type Keepalived struct {
	Env   *Env
	bin   string
	procs [2]*lab.Proc
}

// NewKeepalived writes both nodes' configurations and notify scripts under
// e's node directories; bin is the keepalived binary.
func NewKeepalived(e *Env, bin string) (*Keepalived, error) {
	k := &Keepalived{Env: e, bin: bin}
	for i := range 2 {
		dir := e.NodeDir(i)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
		notify := filepath.Join(dir, "notify.sh")
		if err := os.WriteFile(notify, NotifyScript(k.EventsPath(i)), 0o755); err != nil {
			return nil, fmt.Errorf("writing notify script: %w", err)
		}
		if err := os.WriteFile(k.confPath(i), KeepalivedConfig(i, priority(i), e.Interval, notify), 0o644); err != nil {
			return nil, fmt.Errorf("writing keepalived config: %w", err)
		}
	}
	return k, nil
}

// Name is the daemon's name in reports.
func (k *Keepalived) Name() string { return "keepalived" }

// EventsPath is the file node i's notify script appends to.
func (k *Keepalived) EventsPath(i int) string { return filepath.Join(k.Env.NodeDir(i), "events") }

// LogPath is node i's keepalived console log.
func (k *Keepalived) LogPath(i int) string { return filepath.Join(k.Env.NodeDir(i), "keepalived.log") }

func (k *Keepalived) confPath(i int) string {
	return filepath.Join(k.Env.NodeDir(i), "keepalived.conf")
}
func (k *Keepalived) pidFile(i int) string  { return filepath.Join(k.Env.NodeDir(i), "keepalived.pid") }
func (k *Keepalived) vrrpFile(i int) string { return filepath.Join(k.Env.NodeDir(i), "vrrp.pid") }

// StableFor covers a restarted preferred node's master-down timer (3 x
// interval + skew) before it preempts.
func (k *Keepalived) StableFor() time.Duration { return 4*k.Env.Interval + 500*time.Millisecond }

// Start runs keepalived (parent and VRRP child, no respawn) on node i.
func (k *Keepalived) Start(i int) error {
	// Stale pid files make keepalived believe it is already running.
	for _, f := range []string{k.pidFile(i), k.vrrpFile(i)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing stale pid file: %w", err)
		}
	}
	argv := []string{k.bin, "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp", "--dont-respawn",
		"--use-file", k.confPath(i), "--pid", k.pidFile(i), "--vrrp_pid", k.vrrpFile(i)}
	p, err := k.Env.Pair.Appliances()[i].Start("keepalived-"+lab.ApplianceName(i), argv, nil, k.LogPath(i))
	if err != nil {
		return err
	}
	k.procs[i] = p
	return nil
}

// vrrpPID reads the VRRP child's pid file and checks the child is alive.
func (k *Keepalived) vrrpPID(i int) (int, error) {
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

// LastEvent returns the last state node i's notify script recorded and
// when; "" before any.
func (k *Keepalived) LastEvent(i int) (string, time.Time) {
	f, err := os.Open(k.EventsPath(i))
	if err != nil {
		return "", time.Time{}
	}
	defer f.Close()
	var st string
	var at time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s, t, err := ParseNotify(sc.Text()); err == nil {
			st, at = s, t
		}
	}
	return st, at
}

// Settled reports the active node when both processes and their VRRP
// children are alive, one node holds the VIP and last notified MASTER and
// the other last notified BACKUP; otherwise it says why.
func (k *Keepalived) Settled() (int, bool, string) {
	for i := range 2 {
		if k.procs[i] == nil || k.procs[i].Exited() {
			return -1, false, lab.ApplianceName(i) + ": keepalived not running"
		}
		if _, err := k.vrrpPID(i); err != nil {
			return -1, false, lab.ApplianceName(i) + ": " + err.Error()
		}
	}
	holder, why := k.Env.VIPHolder()
	if holder < 0 {
		return -1, false, why
	}
	if st, _ := k.LastEvent(holder); st != "MASTER" {
		return -1, false, fmt.Sprintf("%s holds the VIP but last notified %q", lab.ApplianceName(holder), st)
	}
	if st, _ := k.LastEvent(1 - holder); st != "BACKUP" {
		return -1, false, fmt.Sprintf("%s last notified %q, not BACKUP", lab.ApplianceName(1-holder), st)
	}
	return holder, true, ""
}

// Fail fails node i by v. Kill SIGKILLs the VRRP child first, then the
// parent: killing only the parent makes the child exit gracefully (a
// priority-0 advert), which is not a crash.
func (k *Keepalived) Fail(i int, v Variant) error {
	return k.Env.Fail(i, v, func() error {
		pid, err := k.vrrpPID(i)
		if err != nil {
			return err
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("killing VRRP child %d: %w", pid, err)
		}
		return k.procs[i].Signal(syscall.SIGKILL)
	})
}

// Restore undoes Fail. A SIGKILLed master keeps its VIP: it is removed, as
// a reboot would, before keepalived starts again.
func (k *Keepalived) Restore(i int, v Variant) error {
	return k.Env.Restore(i, v, "keepalived", k.procs[i], func() error {
		if err := delAddr(k.Env.Pair.Appliances()[i], lab.IfFront, VIPCIDR); err != nil {
			return err
		}
		return k.Start(i)
	})
}

// PIDs returns node i's keepalived processes: the parent and the VRRP
// child.
func (k *Keepalived) PIDs(i int) ([]int, error) {
	if k.procs[i] == nil || k.procs[i].Exited() {
		return nil, fmt.Errorf("keepalived on %s not running", lab.ApplianceName(i))
	}
	child, err := k.vrrpPID(i)
	if err != nil {
		return nil, err
	}
	return []int{k.procs[i].PID, child}, nil
}

// LogTail returns the end of node i's log for error reports.
func (k *Keepalived) LogTail(i int) string { return Tail(k.LogPath(i), 12) }

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
