package cli

import "fmt"

func cmdPeerings(e env, args []string) int {
	fmt.Fprintln(e.stderr, "baton: not implemented yet")
	return exitFailure
}

func cmdRender(e env, args []string) int {
	fmt.Fprintln(e.stderr, "baton: not implemented yet")
	return exitFailure
}
