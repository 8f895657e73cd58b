package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/batonha/baton/internal/pki"
)

func cmdKeygen(e env, args []string) int {
	fs := newFlags(e, "keygen", "--nodes nva-a,nva-b [--out DIR] [--days N] [--force]")
	nodes := fs.String("nodes", "", "comma-separated node names (each gets a certificate for that DNS name)")
	out := fs.String("out", "/etc/baton/pki", "output directory (created with mode 0700)")
	days := fs.Int("days", 3650, "certificate validity in days")
	force := fs.Bool("force", false, "overwrite existing files")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	var names []string
	for _, n := range strings.Split(*nodes, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) < 2 {
		fmt.Fprintln(e.stderr, "baton keygen: --nodes needs the names of both nodes, e.g. --nodes nva-a,nva-b")
		return exitUsage
	}
	if err := pki.Generate(*out, names, time.Duration(*days)*24*time.Hour, *force); err != nil {
		fmt.Fprintf(e.stderr, "baton keygen: %v\n", err)
		return exitFailure
	}
	for _, f := range pki.Files(names) {
		fmt.Fprintln(e.stdout, filepath.Join(*out, f))
	}
	fmt.Fprintf(e.stdout, "copy ca.crt, heartbeat.key and each node's own .crt/.key to that node; keep ca.key offline.\n")
	return exitOK
}
