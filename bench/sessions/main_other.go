//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/sessions needs Linux (network namespaces, conntrack)")
	os.Exit(1)
}
