// Package logsample bounds how many lines a flood can make a package log:
// under an attack a line per rejected connection or per panicking task
// would cost more than the rejection itself and bury everything else. A
// Sampler lets a burst of lines through, then about one per interval, and
// counts the ones it held back so that the next line can say how many.
package logsample

import (
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Sampler decides which events get a log line. It is safe for concurrent
// use; the zero value is not usable: construct it with New.
type Sampler struct {
	lim  *rate.Limiter
	held atomic.Uint64
}

// New returns a Sampler letting burst lines through at once and one per
// every after that.
func New(every time.Duration, burst int) *Sampler {
	return &Sampler{lim: rate.NewLimiter(rate.Every(every), burst)}
}

// Allow reports whether this event gets a line and, if so, how many events
// were held back since the previous line, to be logged with it.
func (s *Sampler) Allow() (ok bool, suppressed uint64) {
	if !s.lim.Allow() {
		s.held.Add(1)
		return false, 0
	}
	// An event held back by another goroutine between Allow and Swap is
	// reported with this line rather than the next: it is never lost.
	return true, s.held.Swap(0)
}
