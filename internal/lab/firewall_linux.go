package lab

import (
	"context"
	"fmt"
	"os"
)

// SharedSNAT is the one source address both appliances translate the
// client's connections to; the server reaches it through the active. A
// connection that survives a failover keeps it, so the standby must hold
// the NAT binding the active made.
const SharedSNAT = "10.100.3.1"

// FirewallRules is the appliances' stateful firewall: forward only what the
// client starts and what belongs to it, count and drop invalid packets (a
// packet of a connection the appliance holds no state for), and SNAT the
// client's network to SharedSNAT towards the server.
func FirewallRules() string {
	return fmt.Sprintf(`table inet fw {
	counter invalid {}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state invalid counter name "invalid" drop
		ct state established,related accept
		iifname "%s" oifname "%s" ct state new accept
	}
}
table ip nat {
	chain post {
		type nat hook postrouting priority 100;
		oifname "%s" ip saddr %s snat to %s
	}
}
`, IfFront, IfBack, IfBack, FrontNet, SharedSNAT)
}

// LoadFirewall loads FirewallRules on both appliances and turns off loose
// TCP pickup: with it on, an appliance without state picks up mid-stream
// connections, and a failover without session sync looks lossless.
func (p *Pair) LoadFirewall() error {
	f, err := os.CreateTemp("", "baton-lab-fw-*.nft")
	if err != nil {
		return fmt.Errorf("writing the firewall rules: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(FirewallRules()); err != nil {
		f.Close()
		return fmt.Errorf("writing the firewall rules: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the firewall rules: %w", err)
	}
	for _, h := range p.Appliances() {
		if out, err := h.Run(context.Background(), "nft", "-f", f.Name()); err != nil {
			return fmt.Errorf("loading the firewall on %s: %w: %s", h.Name(), err, out)
		}
		if err := h.Sysctl("net.netfilter.nf_conntrack_tcp_loose", "0"); err != nil {
			return fmt.Errorf("loose TCP pickup off on %s: %w", h.Name(), err)
		}
	}
	return nil
}
