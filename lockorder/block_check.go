//go:build lockorder || race

package lockorder

import (
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"unsafe"
	"weak"

	"github.com/garrison-go/garrison/internal/blockhook"
)

// The blocking checks (lockdep's cross-release idea, applied to Go's
// waits). An event (a WaitGroup reaching zero, a Cond signal, a value on a
// channel, a call's result) is a node of the lock graph, like a lock
// class, with two kinds of edges:
//
//   - L -> E (WaitedHolding): a goroutine waited for E while holding L.
//   - E -> L (Unblocks): a goroutine acquired L before it unblocked E:
//     while it held L, or since its last wait (a goroutine's recent
//     acquisitions), or since it began work whose end unblocks E.
//
// A cycle L -> E -> L means that the waiter can hold L while the goroutine
// that would wake it waits for L: both block forever. Like lock-order
// cycles, it is reported the first time both halves have been seen, in
// any order and any goroutines, before the operation that closes it
// blocks: usually in runs that did not hang.

func init() {
	blockhook.Register(&blockhook.Hooks{Wait: hookWait, Unblock: hookUnblock, Begin: hookBegin})
}

// maxRecent bounds a goroutine's recent acquisitions: the distinct
// classes it acquired since its last wait. Older ones are forgotten.
const maxRecent = 8

func hookWait(obj any, ev blockhook.Event) {
	if c := eventClass(obj, ev); c != nil {
		waitFor(c, nil)
	}
}

func hookUnblock(obj any, ev blockhook.Event) {
	if c := eventClass(obj, ev); c != nil {
		unblock(c)
	}
}

func hookBegin(obj any, ev blockhook.Event) {
	if c := eventClass(obj, ev); c != nil {
		begin(c)
	}
}

func blocking(obj any)    { hookWait(obj, blockhook.Signal) }
func unblocking(obj any)  { hookUnblock(obj, blockhook.Signal) }
func willUnblock(obj any) { hookBegin(obj, blockhook.Signal) }

// waitFor records that the calling goroutine is about to wait for c,
// holding what it holds (except one entry of exclude: the lock a Cond
// releases while it waits).
func waitFor(c *Class, exclude *lockMeta) {
	gid := curGoid()
	sh := shardOf(gid)
	sh.mu.Lock()
	gl := sh.lookup(gid)
	if gl == nil {
		sh.mu.Unlock()
		return
	}
	// A wait synchronizes with whoever ends it: what was acquired before
	// it no longer counts as needed for what this goroutine unblocks next.
	gl.recent = gl.recent[:0]
	var todo []pending
	for _, h := range gl.held {
		if exclude != nil && h.key == keyOf(exclude) {
			exclude = nil
			continue
		}
		if h.class.node.out.Load().get(c) == nil {
			todo = append(todo, pending{kind: kindEvent, from: h.class, to: c, rel: WaitedHolding})
		}
	}
	for _, o := range gl.owes {
		if o != c && o.node.out.Load().get(c) == nil {
			todo = append(todo, pending{kind: kindEvent, from: o, to: c, rel: Unblocks})
		}
	}
	sh.mu.Unlock()
	if todo != nil {
		resolveEvents(gid, todo, true)
	}
}

// unblock records that the calling goroutine ends waits for c, after the
// blocking acquisitions it holds or made recently; it also ends an
// obligation to unblock c (begin).
func unblock(c *Class) {
	gid := curGoid()
	sh := shardOf(gid)
	sh.mu.Lock()
	gl := sh.lookup(gid)
	if gl == nil {
		sh.mu.Unlock()
		return
	}
	var todo []pending
	need := func(x *Class) {
		if x != c && c.node.out.Load().get(x) == nil {
			todo = append(todo, pending{kind: kindEvent, from: c, to: x, rel: Unblocks})
		}
	}
	for _, h := range gl.held {
		// A lock taken with TryLock cannot block its taker.
		if !h.try {
			need(h.class)
		}
	}
	for _, x := range gl.recent {
		need(x)
	}
	for i, o := range gl.owes {
		if o == c {
			gl.owes = append(gl.owes[:i], gl.owes[i+1:]...)
			break
		}
	}
	sh.mu.Unlock()
	if todo != nil {
		resolveEvents(gid, todo, false)
	}
}

// begin records that the calling goroutine starts work whose end unblocks
// c: every lock it acquires until unblock(c) is needed for c.
func begin(c *Class) {
	gid := curGoid()
	sh := shardOf(gid)
	sh.mu.Lock()
	gl := sh.get(gid)
	gl.owes = append(gl.owes, c)
	gl.recent = gl.recent[:0]
	sh.mu.Unlock()
}

// noteAcquire is acquire's part of the blocking checks (shard lock held):
// c joins the recent acquisitions, and every event the goroutine owes now
// needs c.
func (gl *goroutineLocks) noteAcquire(c *Class, todo []pending) []pending {
	for _, o := range gl.owes {
		if o.node.out.Load().get(c) == nil {
			todo = append(todo, pending{kind: kindEvent, from: o, to: c, rel: Unblocks})
		}
	}
	for _, x := range gl.recent {
		if x == c {
			return todo
		}
	}
	if len(gl.recent) == maxRecent {
		copy(gl.recent, gl.recent[1:])
		gl.recent = gl.recent[:maxRecent-1]
	}
	gl.recent = append(gl.recent, c)
	return todo
}

// resolveEvents records event edges and reports the cycles they close.
func resolveEvents(gid int64, todo []pending, atBlock bool) {
	pcs := make([]uintptr, 32)
	pcs = pcs[:runtime.Callers(3, pcs)]
	var reports []*OrderError
	graph.mu.Lock()
	for _, p := range todo {
		if r, _ := addEdge(p.from, p.to, p.rel, false, sighting{gid: gid, pcs: pcs}); r != nil {
			r.atBlock = atBlock
			reports = append(reports, r)
		}
	}
	graph.mu.Unlock()
	deliver(reports)
}

// Event classes of foreign objects (other packages' hooks, annotations)
// live in maps: by address for pointers and channels, with a weak pointer
// that tells a reused address from the original object and a cleanup that
// drops the class with the object; by value for other comparable values.
type eventKey struct {
	p  uintptr
	ev blockhook.Event
}

type eventEntry struct {
	key eventKey
	c   *Class
	w   weak.Pointer[byte]
}

type valueKey struct {
	v  any
	ev blockhook.Event
}

var eventClasses, valueClasses sync.Map

func eventClass(obj any, ev blockhook.Event) *Class {
	if obj == nil {
		return nil
	}
	t := reflect.TypeOf(obj)
	switch t.Kind() {
	case reflect.Pointer, reflect.Chan, reflect.Map, reflect.UnsafePointer:
	default:
		if !t.Comparable() {
			return nil
		}
		k := valueKey{obj, ev}
		if v, ok := valueClasses.Load(k); ok {
			return v.(*Class)
		}
		c := newEventClass(t, ev)
		c.name = ev.String() + " of " + strconv.Quote(reflect.ValueOf(obj).String()) + " (first at " + userSite(3) + ")"
		v, _ := valueClasses.LoadOrStore(k, c)
		return v.(*Class)
	}
	// The data word of an interface holding a pointer-shaped value is the
	// pointer itself.
	p := (*[2]unsafe.Pointer)(unsafe.Pointer(&obj))[1]
	if p == nil {
		return nil
	}
	k := eventKey{uintptr(p), ev}
	if v, ok := eventClasses.Load(k); ok {
		if e := v.(*eventEntry); e.w.Value() == (*byte)(p) {
			return e.c
		}
	}
	e := &eventEntry{key: k, c: newEventClass(t, ev), w: weak.Make((*byte)(p))}
	for {
		v, loaded := eventClasses.LoadOrStore(k, e)
		if !loaded {
			break
		}
		// Another goroutine created it first, or the entry is left from a
		// collected object whose cleanup has not run yet.
		if old := v.(*eventEntry); old.w.Value() == (*byte)(p) {
			return old.c
		} else {
			eventClasses.CompareAndDelete(k, old)
		}
	}
	liveInstances.Add(1)
	runtime.AddCleanup((*byte)(p), dropEvent, e)
	return e.c
}

func newEventClass(t reflect.Type, ev blockhook.Event) *Class {
	c := &Class{id: classIDs.Add(1)}
	c.perInstance = true
	site := userSite(4)
	c.site = t.String() + " " + ev.String() + "@" + site
	c.name = t.String() + " " + ev.String() + "#" + strconv.FormatUint(c.id, 10) + " (first at " + site + ")"
	return c
}

func dropEvent(e *eventEntry) {
	eventClasses.CompareAndDelete(e.key, e)
	dropClass(e.c)
}

// joinGroup makes the calling goroutine's acquisitions without a group of
// their own (a TimedMutex's LockContext) members of group, for
// LockAllContext, until restore.
func joinGroup(group uint64) (restore func()) {
	gid := curGoid()
	sh := shardOf(gid)
	sh.mu.Lock()
	gl := sh.get(gid)
	old := gl.group
	gl.group = group
	sh.mu.Unlock()
	return func() {
		sh.mu.Lock()
		sh.get(gid).group = old
		sh.mu.Unlock()
	}
}
