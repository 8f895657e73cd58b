package cli

import "fmt"

func cmdSync(e env, args []string) int {
	fmt.Fprintln(e.stderr, "baton: not implemented yet")
	return exitFailure
}
