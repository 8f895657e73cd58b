package cli

import (
	"fmt"

	"github.com/batonha/baton/internal/kvm"
)

func cmdKVM(e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.stderr, "usage: baton kvm plan --pair pair.yaml | baton kvm check VM1.xml VM2.xml")
		return exitUsage
	}
	switch args[0] {
	case "plan":
		fs := newFlags(e, "kvm plan", "--pair pair.yaml")
		pair := fs.String("pair", "", "description of the pair: VMs, interfaces and roles, servers, VLANs")
		if err := fs.Parse(args[1:]); err != nil {
			return exitUsage
		}
		if *pair == "" {
			fs.Usage()
			return exitUsage
		}
		p, err := kvm.LoadPair(*pair)
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitUsage
		}
		out, err := kvm.Plan(p)
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %s: %v\n", *pair, err)
			return exitUsage
		}
		if err := out.Render(e.stdout); err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		return exitOK
	case "check":
		if len(args) != 3 {
			fmt.Fprintln(e.stderr, "usage: baton kvm check VM1.xml VM2.xml   (domain XML as `virsh dumpxml` prints it)")
			return exitUsage
		}
		ps, err := kvm.CheckFiles(args[1], args[2])
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitUsage
		}
		if err := kvm.Report(e.stdout, ps); err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	fmt.Fprintf(e.stderr, "baton: unknown kvm command %q\n", args[0])
	return exitUsage
}
