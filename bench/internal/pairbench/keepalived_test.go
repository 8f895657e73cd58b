package pairbench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeepalivedConfig(t *testing.T) {
	got := string(KeepalivedConfig(0, 150, 100*time.Millisecond, "/run/x/notify.sh"))
	want := `global_defs {
    router_id nva-a
    script_user root
    enable_script_security
    vrrp_version 3
}

vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.1
    unicast_src_ip 10.100.1.11
    unicast_peer {
        10.100.1.12
    }
    virtual_ipaddress {
        10.100.1.100/24 dev eth0
    }
    notify_master "/run/x/notify.sh MASTER"
    notify_backup "/run/x/notify.sh BACKUP"
    notify_fault "/run/x/notify.sh FAULT"
}
`
	if got != want {
		t.Errorf("nva-a config:\n%s\nwant:\n%s", got, want)
	}
	b := string(KeepalivedConfig(1, 100, time.Second, "n"))
	for _, line := range []string{"router_id nva-b", "priority 100", "advert_int 1\n", "unicast_src_ip 10.100.1.12", "        10.100.1.11\n"} {
		if !strings.Contains(b, line) {
			t.Errorf("nva-b config lacks %q:\n%s", line, b)
		}
	}
	if got := KeepalivedConfig(0, 150, 1250*time.Millisecond, "n"); !strings.Contains(string(got), "advert_int 1.25\n") {
		t.Errorf("1.25s interval:\n%s", got)
	}
}

// TestNotifyScriptRoundTrip runs the rendered notify script with /bin/sh
// and parses what it appended.
func TestNotifyScriptRoundTrip(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, NotifyScript(events), 0o755); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	for _, st := range []string{"BACKUP", "MASTER"} {
		if out, err := exec.Command("/bin/sh", script, st).CombinedOutput(); err != nil {
			t.Fatalf("running notify script: %v\n%s", err, out)
		}
	}
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("events:\n%s", b)
	}
	for i, want := range []string{"BACKUP", "MASTER"} {
		st, at, err := ParseNotify(lines[i])
		if err != nil || st != want || at.Before(before) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("line %q: %s %v %v", lines[i], st, at, err)
		}
	}
}

func TestParseNotify(t *testing.T) {
	st, ts, err := ParseNotify("MASTER 1763800000.123456789\n")
	if err != nil || st != "MASTER" || !ts.Equal(time.Unix(1763800000, 123456789)) {
		t.Errorf("got %s %v %v", st, ts, err)
	}
	_, ts, err = ParseNotify("BACKUP 1763800000.5")
	if err != nil || ts.Nanosecond() != 500000000 {
		t.Errorf("short fraction: %v %v", ts, err)
	}
	_, ts, err = ParseNotify("FAULT 1763800000.1234567891234")
	if err != nil || ts.Nanosecond() != 123456789 {
		t.Errorf("long fraction: %v %v", ts, err)
	}
	for _, bad := range []string{"", "MASTER", "MASTER x.1", "MASTER 1.-5", "MASTER 1 2"} {
		if _, _, err := ParseNotify(bad); err == nil {
			t.Errorf("ParseNotify(%q) accepted", bad)
		}
	}
}

func FuzzParseNotify(f *testing.F) {
	f.Add("MASTER 1763800000.123456789")
	f.Add("FAULT 0.")
	f.Add("BACKUP 99999999999999999999.1")
	f.Fuzz(func(t *testing.T, line string) {
		st, _, err := ParseNotify(line)
		if err == nil && (st == "" || strings.ContainsAny(st, " \t\n")) {
			t.Errorf("accepted %q with state %q", line, st)
		}
	})
}
