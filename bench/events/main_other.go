//go:build !linux

// Command events is Linux-only: it needs network namespaces.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/events needs Linux (network namespaces)")
	os.Exit(2)
}
