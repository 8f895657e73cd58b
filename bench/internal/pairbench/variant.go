package pairbench

import (
	"fmt"
	"strings"
)

// Variant is how the active node fails.
type Variant string

const (
	Kill     Variant = "kill"     // SIGKILL the active daemon
	LinkDown Variant = "linkdown" // set every link of the active node down
)

// ParseVariants parses a comma-separated list such as "kill,linkdown".
func ParseVariants(s string) ([]Variant, error) {
	var out []Variant
	for _, v := range strings.Split(s, ",") {
		switch vv := Variant(strings.TrimSpace(v)); vv {
		case Kill, LinkDown:
			out = append(out, vv)
		default:
			return nil, fmt.Errorf("unknown variant %q (want kill or linkdown)", v)
		}
	}
	return out, nil
}
