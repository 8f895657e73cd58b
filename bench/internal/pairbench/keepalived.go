package pairbench

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/batonha/baton/internal/lab"
)

// The virtual address both benchmarks move, on the lab's front segment.
const (
	VIPAddr = "10.100.1.100"
	VIPCIDR = VIPAddr + "/24"
)

// priority is the VRRP / baton priority of appliance i: nva-a (150) is
// preferred over nva-b (100).
func priority(i int) int { return [2]int{150, 100}[i] }

// KeepalivedConfig renders appliance i's keepalived configuration: both
// nodes start as BACKUP and elect by priority, VRRPv3 adverts go unicast
// every interval over front, the VIP is a /24 on the bridged front
// interface, and every state change runs notify with the state as its
// argument. keepalived's defaults send five gratuitous ARPs on becoming
// master.
func KeepalivedConfig(i, prio int, interval time.Duration, notify string) []byte {
	adv := strconv.FormatFloat(interval.Seconds(), 'f', -1, 64)
	return fmt.Appendf(nil, `global_defs {
    router_id %[1]s
    script_user root
    enable_script_security
    vrrp_version 3
}

vrrp_instance VI_1 {
    state BACKUP
    interface %[8]s
    virtual_router_id 51
    priority %[2]d
    advert_int %[3]s
    unicast_src_ip %[4]s
    unicast_peer {
        %[5]s
    }
    virtual_ipaddress {
        %[6]s dev %[8]s
    }
    notify_master "%[7]s MASTER"
    notify_backup "%[7]s BACKUP"
    notify_fault "%[7]s FAULT"
}
`, lab.ApplianceName(i), prio, adv, lab.FrontAddr(i), lab.FrontAddr(1-i), VIPCIDR, notify, lab.IfFront)
}

// NotifyScript renders the keepalived notify script: it appends one line
// "<STATE> <unix seconds.nanoseconds>" to the file events.
func NotifyScript(events string) []byte {
	return fmt.Appendf(nil, "#!/bin/sh\necho \"$1 $(date +%%s.%%N)\" >> %s\n", events)
}

// ParseNotify parses one line written by NotifyScript.
func ParseNotify(line string) (state string, t time.Time, err error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return "", time.Time{}, fmt.Errorf("parsing notify line %q: want STATE SECONDS.NANOS", line)
	}
	sec, frac, _ := strings.Cut(f[1], ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("parsing notify seconds %q: %w", sec, err)
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil || ns < 0 {
			return "", time.Time{}, fmt.Errorf("parsing notify nanoseconds %q: %w", frac, err)
		}
	}
	return f[0], time.Unix(s, ns), nil
}
