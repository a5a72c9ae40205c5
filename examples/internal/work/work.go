// Package work is the simulated business logic shared by the hardened
// service and its naive twin. Both twins call exactly these functions, so
// every difference the siege measures comes from how the work is wired
// (goroutines, locks, deadlines, listeners), never from the work itself.
package work

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"runtime"
	"time"
)

// Job is a background job such as rendering and uploading a report: it
// holds a buffer of Size bytes, burns CPU for Rounds hashes over it, then
// waits Wait for a downstream system.
type Job struct {
	Size   int
	Rounds int
	Wait   time.Duration
}

// Run performs the job. It returns ctx's error as soon as ctx is done, so a
// caller that cancels or bounds ctx gets its resources back promptly.
func (j Job) Run(ctx context.Context) error {
	buf := make([]byte, max(j.Size, sha256.Size))
	for i := range buf {
		buf[i] = byte(i)
	}
	for range j.Rounds {
		if err := ctx.Err(); err != nil {
			return err
		}
		sum := sha256.Sum256(buf)
		copy(buf, sum[:])
	}
	err := Pause(ctx, j.Wait)
	// The buffer is the job's working set: it stays live while the job
	// waits, as a real report would until it is uploaded.
	runtime.KeepAlive(buf)
	return err
}

// Pause stands for a short blocking call (a disk write, a fraud-check RPC)
// that a handler makes in the middle of its work. It returns ctx's error if
// ctx ends first.
func Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RoundsFor returns how many hashing rounds over a buffer of size bytes
// cost about cpu of CPU time on this machine (at least 1), measured now:
// a job defined in rounds alone is three times lighter on a CPU with
// SHA instructions than on one without, and an attack sized for one
// would not overload the other.
func RoundsFor(size int, cpu time.Duration) int {
	buf := make([]byte, max(size, sha256.Size))
	const probe = 8
	best := time.Duration(math.MaxInt64)
	for range 5 {
		t0 := time.Now()
		for range probe {
			sum := sha256.Sum256(buf)
			copy(buf, sum[:])
		}
		best = min(best, time.Since(t0))
	}
	perRound := max(best/probe, time.Nanosecond)
	return max(int(cpu/perRound), 1)
}

// Password returns user's password: every account of the simulation has
// one, derived from its name, so that both twins check logins alike.
func Password(user string) string { return user + "-secret" }

// CheckPassword reports whether password is user's, in time independent
// of where the two differ.
func CheckPassword(user, password string) bool {
	return subtle.ConstantTimeCompare([]byte(password), []byte(Password(user))) == 1
}
