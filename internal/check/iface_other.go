//go:build !linux

package check

import (
	"errors"
	"fmt"
)

func newIfaceProber(name string) (Prober, error) {
	return nil, fmt.Errorf("interface check of %s: %w", name, errors.ErrUnsupported)
}
