//go:build !linux

// Command vip measures VIP failover of baton and keepalived in network
// namespaces; it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench-vip: needs Linux (network namespaces)")
	os.Exit(1)
}
