//go:build lockorder || race

package lockorder

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// lockMeta is the checking state embedded in every mutex.
type lockMeta struct {
	class atomic.Pointer[Class]
	// holder is the id of the goroutine holding the write lock, so that an
	// Unlock from another goroutine can clear the holder's record. It is
	// written only while the lock is held, and read by the unlocker, which
	// is ordered after the Lock it undoes: the mutex itself guards it.
	holder int64
}

func (k *lockMeta) setClass(c *Class) { k.class.Store(c) }

func keyOf(k *lockMeta) uintptr { return uintptr(unsafe.Pointer(k)) }

// orderKey is LockAll's sort key: explicit class rank and id, then address.
// Per-instance classes count as "no class" so that both builds sort alike.
func (k *lockMeta) orderKey() (int, uint64) {
	if c := k.class.Load(); c != nil && !c.perInstance {
		return c.rank, c.id
	}
	return 0, 0
}

// classOf returns the mutex's class, creating its per-instance class on
// first use.
func classOf[T any](owner *T, k *lockMeta, kind string) *Class {
	if c := k.class.Load(); c != nil {
		if c.perInstance && c.owner != uintptr(unsafe.Pointer(owner)) {
			return copiedClass(owner, k, kind, c)
		}
		return c
	}
	return instanceClass(owner, k, kind, nil)
}

func instanceClass[T any](owner *T, k *lockMeta, kind string, copyOf *Class) *Class {
	c := &Class{id: classIDs.Add(1)}
	c.perInstance = true
	c.owner = uintptr(unsafe.Pointer(owner))
	verb := "locked"
	switch kind {
	case "WaitGroup", "Cond":
		verb = "used"
	}
	site := callerSite(2)
	c.site = kind + "@" + site
	c.name = kind + "#" + strconv.FormatUint(c.id, 10) + " (first " + verb + " at " + site + ")"
	if copyOf != nil {
		c.name = kind + "#" + strconv.FormatUint(c.id, 10) + " (a copy of " + copyOf.name + ", first " + verb + " at " + site + ")"
	}
	if !k.class.CompareAndSwap(copyOf, c) {
		return k.class.Load()
	}
	liveInstances.Add(1)
	fields.noteFirst(c.site)
	// The class never points back at the mutex, so the graph cannot keep
	// the mutex alive; the cleanup removes the class once it is gone.
	runtime.AddCleanup(owner, dropClass, c)
	return c
}

// copiedClass handles a per-instance class found in a mutex other than its
// own: the mutex was copied after first use. The copy gets its own class
// (it is a different lock; sharing the class would report nesting when
// both are held) and the copy is reported once per original class.
func copiedClass[T any](owner *T, k *lockMeta, kind string, orig *Class) *Class {
	c := instanceClass(owner, k, kind, orig)
	if c.owner == uintptr(unsafe.Pointer(owner)) && orig.node.copyReported.CompareAndSwap(false, true) {
		pcs := make([]uintptr, 32)
		pcs = pcs[:runtime.Callers(4, pcs)]
		deliver([]*OrderError{single(ErrCopied, orig, c, curGoid(), pcs)})
	}
	return c
}

const (
	stateWaiting = iota
	stateHeld
)

// heldLock is one entry of a goroutine's held-lock stack. Entries are
// reused; all fields except state and since are guarded by the shard lock.
type heldLock struct {
	// key identifies the mutex (its lockMeta's address). It is not a
	// pointer on purpose: the checker's records must not keep a mutex
	// reachable, or Go's goroutine leak profile could not see that the
	// goroutines blocked on it are blocked forever.
	key      uintptr
	class    *Class
	gid      int64
	read     bool
	try      bool
	group    uint64
	chained  bool // see check
	state    atomic.Uint32
	since    atomic.Int64 // watchdog clock at the wait or acquisition, 0 when off
	pcs      []uintptr    // acquisition stack, recorded only while a watchdog runs
	reported uint8        // watchdog findings made: 1<<stateWaiting, 1<<stateHeld
}

// goroutineLocks is a goroutine's held-lock stack. Only the goroutine
// itself pushes; an Unlock from another goroutine may remove an entry,
// which is why it lives behind a shard lock rather than being owned.
type goroutineLocks struct {
	gid   int64
	held  []*heldLock
	spare []*heldLock
	// recent are the classes of the blocking acquisitions made since the
	// goroutine last waited (see block_check.go), at most maxRecent.
	recent []*Class
	// owes are the events the goroutine began work to unblock.
	owes []*Class
	// group is the LockAll group that foreign lockers taken by
	// LockAllContext join (0 outside of it).
	group uint64
}

// shard maps goroutine ids to their stacks. Entries whose stack became
// empty stay (a goroutine locking in a loop keeps its entry) until the map
// outgrows its limit, when they are swept; the map therefore holds at most
// about twice the number of goroutines that hold locks, plus a constant.
type shard struct {
	mu    sync.Mutex
	last  *goroutineLocks
	m     map[int64]*goroutineLocks
	limit int
	_     [32]byte // keep shards on separate cache lines
}

const nShards = 64

var shards [nShards]shard

func shardOf(gid int64) *shard { return &shards[uint64(gid)%nShards] }

func (s *shard) lookup(gid int64) *goroutineLocks {
	if s.last != nil && s.last.gid == gid {
		return s.last
	}
	gl := s.m[gid]
	if gl != nil {
		s.last = gl
	}
	return gl
}

func (s *shard) get(gid int64) *goroutineLocks {
	if gl := s.lookup(gid); gl != nil {
		return gl
	}
	if s.m == nil {
		s.m = make(map[int64]*goroutineLocks)
		s.limit = 32
	}
	if len(s.m) >= s.limit {
		for id, gl := range s.m {
			if len(gl.held) == 0 && len(gl.owes) == 0 && gl.group == 0 {
				delete(s.m, id)
			}
		}
		s.last = nil
		s.limit = max(32, 2*len(s.m))
	}
	gl := &goroutineLocks{gid: gid}
	s.m[gid] = gl
	s.last = gl
	return gl
}

func (gl *goroutineLocks) push(k *lockMeta, c *Class, read, try bool, group uint64, state uint32) *heldLock {
	var e *heldLock
	if n := len(gl.spare); n > 0 {
		e = gl.spare[n-1]
		gl.spare = gl.spare[:n-1]
	} else {
		e = new(heldLock)
	}
	e.key, e.class, e.gid, e.read, e.try, e.group, e.reported = keyOf(k), c, gl.gid, read, try, group, 0
	e.chained = false
	// Stores only on change: an atomic store is an exchange, a load is not.
	if e.state.Load() != state {
		e.state.Store(state)
	}
	if t := wdClock.Load(); t != 0 {
		e.since.Store(t)
		e.pcs = e.pcs[:cap(e.pcs)]
		if len(e.pcs) == 0 {
			e.pcs = make([]uintptr, 32)
		}
		e.pcs = e.pcs[:runtime.Callers(2, e.pcs)]
	} else {
		if e.since.Load() != 0 {
			e.since.Store(0)
		}
		e.pcs = e.pcs[:0]
	}
	gl.held = append(gl.held, e)
	return e
}

// remove drops the top-most entry for k in the given mode; with
// heldOnly, only an entry marked held (not one whose owner still waits).
func (gl *goroutineLocks) remove(k *lockMeta, read, heldOnly bool) bool {
	for i := len(gl.held) - 1; i >= 0; i-- {
		e := gl.held[i]
		if e.key == keyOf(k) && e.read == read && (!heldOnly || e.state.Load() == stateHeld) {
			gl.drop(i)
			return true
		}
	}
	return false
}

// removeOldest drops the bottom-most write entry for k. It serves an
// Unlock on behalf of the holder, which may at that moment be blocked
// re-acquiring k (lock here, unlock there, lock again to wait for it): its
// waiting entry is then above the held one and must stay.
func (gl *goroutineLocks) removeOldest(k *lockMeta) bool {
	for i, e := range gl.held {
		if e.key == keyOf(k) && !e.read {
			gl.drop(i)
			return true
		}
	}
	return false
}

func (gl *goroutineLocks) drop(i int) {
	e := gl.held[i]
	copy(gl.held[i:], gl.held[i+1:])
	gl.held[len(gl.held)-1] = nil
	gl.held = gl.held[:len(gl.held)-1]
	e.key, e.class = 0, nil
	gl.spare = append(gl.spare, e)
}

// acquire runs the order checks for a blocking acquisition of k (class c)
// and records it as waiting. The caller then blocks on the real lock and
// calls acquired, or abandon if it gave up. Violations are reported before
// the lock is taken.
func acquire(k *lockMeta, c *Class, read bool, group uint64) hold {
	gid := curGoid()
	sh := shardOf(gid)
	sh.mu.Lock()
	gl := sh.get(gid)
	var todo []pending
	chained := !c.perInstance // see check
	if group == 0 {
		group = gl.group
	}
	if len(gl.held) > 0 {
		todo, chained = check(gl, k, c, group)
	}
	todo = gl.noteAcquire(c, todo)
	if !read {
		noteWriter(c, gl.held)
	}
	if todo == nil {
		e := gl.push(k, c, read, false, group, stateWaiting)
		e.chained = chained
		sh.mu.Unlock()
		return hold{e, k}
	}
	held := make([]*Class, 0, len(gl.held))
	for _, h := range gl.held {
		held = append(held, h.class)
	}
	sh.mu.Unlock()
	resolve(gid, c, todo, read, held)
	sh.mu.Lock()
	e := sh.get(gid).push(k, c, read, false, group, stateWaiting)
	sh.mu.Unlock()
	return hold{e, k}
}

// hold is an acquisition in progress: the caller keeps it on its stack,
// blocks on the real lock, then calls acquired (or abandon).
type hold struct {
	e *heldLock
	k *lockMeta
}

func (h hold) acquired() { h.e.acquired(h.k) }
func (h hold) abandon()  { h.e.abandon() }

// acquired marks a waiting entry as held.
func (e *heldLock) acquired(k *lockMeta) {
	if !e.read {
		k.holder = e.gid
	}
	// The state flips last: from here on another goroutine may remove (and
	// the owner may then reuse) the entry. The watchdog, VerifyNone and the
	// search for another goroutine's read lock tell waiting from held
	// entries by it.
	if t := wdClock.Load(); t != 0 {
		e.since.Store(t)
	}
	e.state.Store(stateHeld)
}

// abandon removes a waiting entry after a timed acquisition gave up. An
// acquisition that can give up cannot block a goroutine forever, so it no
// longer counts among the recent ones either (see block_check.go).
func (e *heldLock) abandon() {
	sh := shardOf(e.gid)
	sh.mu.Lock()
	if gl := sh.lookup(e.gid); gl != nil {
		for i, h := range gl.held {
			if h == e {
				gl.recent = slices.DeleteFunc(gl.recent, func(c *Class) bool { return c == h.class })
				gl.drop(i)
				break
			}
		}
	}
	sh.mu.Unlock()
}

// tried records a successful TryLock/TryRLock: held, but no ordering edge,
// since a try-acquisition cannot block and so cannot deadlock.
func tried(k *lockMeta, c *Class, read bool) {
	gid := curGoid()
	sh := shardOf(gid)
	sh.mu.Lock()
	sh.get(gid).push(k, c, read, true, 0, stateHeld)
	sh.mu.Unlock()
	if !read {
		k.holder = gid
	}
}

// release removes the record of k before the real unlock. The unlocking
// goroutine is usually the holder; if not (legal for sync mutexes), the
// entry is removed from the holder's stack: for a write lock the holder is
// known, for a read lock some reader's entry is removed.
func release(k *lockMeta, read bool) {
	var holder int64
	if !read {
		holder, k.holder = k.holder, 0
	}
	gid := curGoid()
	sh := shardOf(gid)
	sh.mu.Lock()
	if gl := sh.lookup(gid); gl != nil && gl.remove(k, read, false) {
		sh.mu.Unlock()
		return
	}
	sh.mu.Unlock()
	if holder != 0 {
		hs := shardOf(holder)
		hs.mu.Lock()
		if gl := hs.lookup(holder); gl != nil && gl.removeOldest(k) {
			hs.mu.Unlock()
			return
		}
		hs.mu.Unlock()
	}
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		for _, gl := range s.m {
			if gl.remove(k, read, true) {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
}

// userSite returns "file.go:line" of the first frame outside this module
// (test files count as outside), skip frames above the caller of userSite.
func userSite(skip int) string {
	var pcs [24]uintptr
	n := runtime.Callers(skip+2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if f.File != "" && (!strings.HasPrefix(f.Function, modPrefix) || strings.HasSuffix(f.File, "_test.go")) {
			return fmt.Sprintf("%s:%d", filepath.Base(f.File), f.Line)
		}
		if !more {
			return "unknown site"
		}
	}
}

const modPrefix = "github.com/garrison-go/garrison/"

// callerSite returns "file.go:line" of the first frame outside this
// package, skip frames above the caller of callerSite.
func callerSite(skip int) string {
	var pcs [16]uintptr
	n := runtime.Callers(skip+2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !internalFrame(f) && f.File != "" {
			return fmt.Sprintf("%s:%d", filepath.Base(f.File), f.Line)
		}
		if !more {
			return "unknown site"
		}
	}
}
