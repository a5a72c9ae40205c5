// Package work is the simulated business logic shared by the hardened
// service and its naive twin. Both twins call exactly these functions, so
// every difference the siege measures comes from how the work is wired
// (goroutines, locks, deadlines, listeners), never from the work itself.
package work

import (
	"context"
	"crypto/sha256"
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
