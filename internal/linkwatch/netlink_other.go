//go:build !linux

package linkwatch

import (
	"context"
	"errors"
	"net"
)

// Netlink is unavailable off Linux: Watch fails.
type Netlink struct{}

var errUnsupported = errors.New("interface tracking needs Linux")

// Watch implements Source.
func (Netlink) Watch(context.Context, chan<- Update) error { return errUnsupported }

// RouteInterface is unavailable off Linux.
func RouteInterface(net.IP) (string, error) { return "", errUnsupported }

// AddressInterface is unavailable off Linux.
func AddressInterface(net.IP) (string, error) { return "", errUnsupported }
