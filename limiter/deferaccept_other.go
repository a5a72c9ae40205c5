//go:build !linux

package limiter

import (
	"errors"
	"net"
	"time"
)

// setDeferAccept: TCP_DEFER_ACCEPT is Linux-only (FreeBSD's accept filters
// are configured differently).
func setDeferAccept(net.Listener, time.Duration) error {
	return invalidf("WithDeferAccept: %w on this system", errors.ErrUnsupported)
}

func deferAccept(net.Listener) (int, bool) { return 0, false }
