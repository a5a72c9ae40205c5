package limiter

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrRateLimited is matched (errors.Is) by every error that reports a
// rejection by a limit: *RateLimitError, and Wait's error when the wait
// could not fit in the context's deadline.
var ErrRateLimited = errors.New("limiter: rate limited")

// ErrClosed is returned by Listener.Accept after Close. It wraps
// net.ErrClosed, so errors.Is(err, net.ErrClosed) holds and http.Server
// treats it as a normal shutdown.
var ErrClosed = fmt.Errorf("limiter: listener closed: %w", net.ErrClosed)

// errInvalid tags every option and constructor validation error.
var errInvalid = errors.New("limiter: invalid option")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInvalid}, args...)...)
}

// RateLimitError is the error form of a denied Decision: it says why and for
// how long. errors.Is(err, ErrRateLimited) reports true for it.
type RateLimitError struct {
	Reason     Reason
	RetryAfter time.Duration
}

// Error implements error.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("limiter: rate limited (%s), retry after %s", e.Reason, e.RetryAfter)
}

// Is reports whether target is ErrRateLimited.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }
