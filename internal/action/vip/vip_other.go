//go:build !linux

package vip

import (
	"errors"
	"log/slog"

	"github.com/batonha/baton/internal/clock"
)

// New fails: virtual addresses need Linux.
func New(cfg Config, clk clock.Clock, log *slog.Logger) (*VIP, error) {
	return nil, errors.New("the vip action needs Linux")
}
