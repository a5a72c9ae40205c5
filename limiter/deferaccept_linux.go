package limiter

import (
	"net"
	"syscall"
	"time"
)

// setDeferAccept sets TCP_DEFER_ACCEPT on inner's listening socket. The
// option is read when a handshake completes, so setting it on a socket that
// already listens applies to every later connection.
func setDeferAccept(inner net.Listener, d time.Duration) error {
	rc, err := rawListener(inner)
	if err != nil {
		return err
	}
	secs := int((d + time.Second - 1) / time.Second)
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, secs)
	}); err != nil {
		return err
	}
	if serr != nil {
		return invalidf("WithDeferAccept: setsockopt TCP_DEFER_ACCEPT: %v", serr)
	}
	return nil
}

// deferAccept reports the TCP_DEFER_ACCEPT value of inner's socket in
// seconds, and false when it cannot be read.
func deferAccept(inner net.Listener) (int, bool) {
	rc, err := rawListener(inner)
	if err != nil {
		return 0, false
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT)
	}); err != nil || gerr != nil {
		return 0, false
	}
	return v, true
}

func rawListener(inner net.Listener) (syscall.RawConn, error) {
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return nil, invalidf("WithDeferAccept: the inner listener (%T) has no socket", inner)
	}
	return sc.SyscallConn()
}
