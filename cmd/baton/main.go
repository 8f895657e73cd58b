// Command baton keeps a pair of network appliances highly available.
package main

import (
	"os"

	"github.com/batonha/baton/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr, os.Environ()))
}
