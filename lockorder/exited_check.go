//go:build lockorder || race

package lockorder

import (
	"runtime"
	"slices"
	"sync"
	"time"
)

// A lock whose holder has exited without unlocking it can never be
// acquired again: the missing Unlock of an early return, seen by the next
// goroutine that locks. Before a contended acquisition blocks, the checker
// looks for that, so the report comes before the hang. It needs the list
// of live goroutines, which only runtime.Stack(all) gives (it stops the
// world), so the list is cached and refreshed only when it is older than
// liveMaxAge and would otherwise vouch for the holder: the cost falls on
// contended acquisitions, at most one refresh per interval.
const liveMaxAge = 10 * time.Millisecond

var live struct {
	mu   sync.Mutex
	at   time.Time
	gids map[int64]bool
}

// goroutineExited reports whether goroutine gid, whose record the caller
// has just read, has exited. A recent list vouches for a goroutine on it;
// absence is only believed from a list taken after the record was read
// (goroutine ids are not handed out in creation order across Ps, so an
// older list says nothing about a goroutine it does not name).
func goroutineExited(gid int64) bool {
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.gids[gid] && time.Since(live.at) < liveMaxAge {
		return false
	}
	live.gids = map[int64]bool{}
	for id := range goroutineStacks() {
		live.gids[id] = true
	}
	live.at = time.Now()
	return !live.gids[gid]
}

// exitedHolders returns the goroutines recorded as holding k (for writing,
// or any mode with anyMode) that have exited.
func exitedHolders(k *lockMeta, anyMode bool) []int64 {
	var out []int64
	for _, g := range holders(k, anyMode) {
		if goroutineExited(g) {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return nil
	}
	// Read again: a holder that unlocked and exited between the first
	// read and the list of live goroutines is gone from the records now
	// (an exited goroutine makes no new ones).
	still := holders(k, anyMode)
	return slices.DeleteFunc(out, func(g int64) bool { return !slices.Contains(still, g) })
}

// holders returns the goroutines recorded as holding k.
func holders(k *lockMeta, anyMode bool) []int64 {
	key := keyOf(k)
	var gids []int64
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		for _, gl := range s.m {
			for _, e := range gl.held {
				if e.key == key && (anyMode || !e.read) && e.state.Load() == stateHeld {
					gids = append(gids, e.gid)
				}
			}
		}
		s.mu.Unlock()
	}
	return gids
}

// contendedHold runs contended for an acquisition in progress, h, and
// drops h's record if the handler panics the acquisition away.
func contendedHold(h hold, k *lockMeta, c *Class, read bool) {
	ok := false
	defer func() {
		if !ok {
			h.abandon()
		}
	}()
	contended(k, c, read)
	ok = true
}

// contended runs before an acquisition of k (class c) blocks: if a holder
// that would block it has exited, it reports ErrExitedHolder, once per
// class.
func contended(k *lockMeta, c *Class, read bool) {
	if c.node.exitedReported.Load() {
		return
	}
	gids := exitedHolders(k, !read)
	if len(gids) == 0 || !c.node.exitedReported.CompareAndSwap(false, true) {
		return
	}
	gid := curGoid()
	pcs := make([]uintptr, 32)
	pcs = pcs[:runtime.Callers(3, pcs)]
	r := single(ErrExitedHolder, c, c, gid, pcs)
	r.Edges[0].Goroutine = gid
	r.exited = gids
	r.atBlock = true
	deliver([]*OrderError{r})
}
