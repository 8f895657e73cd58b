//go:build !linux

// Command bgp needs Linux network namespaces.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench-bgp: needs Linux (network namespaces)")
	os.Exit(1)
}
