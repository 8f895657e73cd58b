package vip

import (
	"log/slog"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/linux"
)

// New returns the action acting on the network namespace baton runs in.
func New(cfg Config, clk clock.Clock, log *slog.Logger) (*VIP, error) {
	h, err := linux.Open()
	if err != nil {
		return nil, err
	}
	v, err := NewWith(cfg, h, linux.MacvlanName, clk, log)
	if err != nil {
		h.Close()
		return nil, err
	}
	v.closer = h
	return v, nil
}
