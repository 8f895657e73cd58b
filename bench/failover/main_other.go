//go:build !linux

// Command failover needs Linux network namespaces.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench-failover: needs Linux (network namespaces)")
	os.Exit(1)
}
