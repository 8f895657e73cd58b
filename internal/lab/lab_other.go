//go:build !linux

package lab

import (
	"context"
	"errors"
	"io"
	"log/slog"
)

var errNotLinux = errors.New("the lab needs Linux network namespaces")

// Demo needs Linux.
func Demo(ctx context.Context, batonBin string, out io.Writer, log *slog.Logger) error {
	return errNotLinux
}

// Cleanup needs Linux.
func Cleanup(prefix string) error { return errNotLinux }
