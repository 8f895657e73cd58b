package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sysClassNet is where Linux publishes network interfaces.
const sysClassNet = "/sys/class/net"

// ifaceUp is IFF_UP in an interface's flags.
const ifaceUp = 0x1

// IfaceProber passes when a network interface is up, as read from
// /sys/class/net/NAME/operstate. "up" passes. "unknown" passes only when
// the interface is administratively up (IFF_UP in .../flags): loopback,
// dummy, tun and other virtual devices that do not track carrier always
// report "unknown", and for them administratively up is the best "up"
// there is. Every other state (down, lowerlayerdown, dormant, notpresent,
// testing) and a missing interface fail.
type IfaceProber struct {
	Name string
	root string // /sys/class/net, replaced in tests
}

func newIfaceProber(name string) (Prober, error) {
	return &IfaceProber{Name: name, root: sysClassNet}, nil
}

// Probe reads the interface state once.
func (p *IfaceProber) Probe(ctx context.Context) error {
	dir := filepath.Join(p.root, p.Name)
	raw, err := os.ReadFile(filepath.Join(dir, "operstate"))
	if err != nil {
		return fmt.Errorf("reading operstate of interface %s: %w", p.Name, err)
	}
	state := strings.TrimSpace(string(raw))
	switch state {
	case "up":
		return nil
	case "unknown":
		raw, err := os.ReadFile(filepath.Join(dir, "flags"))
		if err != nil {
			return fmt.Errorf("reading flags of interface %s (operstate unknown): %w", p.Name, err)
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(raw)), "0x"), 16, 32)
		if err != nil {
			return fmt.Errorf("parsing flags %q of interface %s: %w", strings.TrimSpace(string(raw)), p.Name, err)
		}
		if flags&ifaceUp == 0 {
			return fmt.Errorf("interface %s is administratively down (operstate unknown)", p.Name)
		}
		return nil
	default:
		return fmt.Errorf("interface %s operstate is %s", p.Name, state)
	}
}
