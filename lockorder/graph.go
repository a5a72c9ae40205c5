//go:build lockorder || race

package lockorder

import (
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// classState is what checking builds keep per class.
type classState struct {
	perInstance bool
	// For a per-instance class: the address of its mutex (to tell a copy)
	// and its kind and first site, which identify the declaration across
	// instances for report deduplication.
	owner uintptr
	site  string
	node  classNode
}

// classNode is a class's place in the order graph.
type classNode struct {
	// out is the set of edges leaving the class. Readers load it without
	// any lock; writers (graph.mu) publish a modified copy. The fast path
	// of an acquisition is one load and one lookup per held lock, down to
	// the first chained one (see check).
	out atomic.Pointer[edgeSet]
	// in lists the classes with an edge into this one, so a dropped
	// per-instance class can be unlinked. Guarded by graph.mu.
	in map[*Class]struct{}
	// nestReported and recursiveReported make those reports once-only.
	nestReported      atomic.Bool
	recursiveReported atomic.Bool
	exitedReported    atomic.Bool
	copyReported      atomic.Bool
	// gates are the classes every blocking write acquisition of this
	// class so far was made under (nil until the first one); see gated.
	gates atomic.Pointer[[]*Class]
}

// edgeSet is the set of edges leaving a class. A small set is an
// immutable map, replaced on write, so a read is a plain map lookup. A set
// that outgrows smallEdges (a lock held while taking many per-instance
// locks) moves into a sync.Map, whose reads are also lock-free and whose
// writes do not copy, so building it stays linear.
type edgeSet struct {
	m   map[*Class]*edge
	big *sync.Map
}

const smallEdges = 32

func (s *edgeSet) get(c *Class) *edge {
	switch {
	case s == nil:
		return nil
	case s.big != nil:
		if v, ok := s.big.Load(c); ok {
			return v.(*edge)
		}
		return nil
	}
	return s.m[c]
}

// all iterates over the edges; graph.mu must be held.
func (s *edgeSet) all(yield func(*Class, *edge) bool) {
	switch {
	case s == nil:
	case s.big != nil:
		s.big.Range(func(k, v any) bool { return yield(k.(*Class), v.(*edge)) })
	default:
		for k, v := range s.m {
			if !yield(k, v) {
				return
			}
		}
	}
}

func (s *edgeSet) len() int {
	n := 0
	for range s.all {
		n++
	}
	return n
}

// with returns the set plus e (graph.mu held); a big set is updated in
// place.
func (s *edgeSet) with(to *Class, e *edge) *edgeSet {
	if s != nil && s.big != nil {
		s.big.Store(to, e)
		return s
	}
	var old map[*Class]*edge
	if s != nil {
		old = s.m
	}
	if len(old) >= smallEdges {
		big := new(sync.Map)
		for k, v := range old {
			big.Store(k, v)
		}
		big.Store(to, e)
		return &edgeSet{big: big}
	}
	next := &edgeSet{m: make(map[*Class]*edge, len(old)+1)}
	for k, v := range old {
		next.m[k] = v
	}
	next.m[to] = e
	return next
}

// without returns the set minus the edge to c (graph.mu held).
func (s *edgeSet) without(c *Class) *edgeSet {
	if s == nil {
		return nil
	}
	if s.big != nil {
		s.big.Delete(c)
		return s
	}
	next := &edgeSet{m: make(map[*Class]*edge, len(s.m))}
	for k, v := range s.m {
		if k != c {
			next.m[k] = v
		}
	}
	return next
}

// edge is "held from while acquiring to", with the first sighting.
type edge struct {
	from, to *Class
	rel      Relation
	read     bool     // to was read-locked
	held     []*Class // classes held at the first sighting
	gid      int64
	pcs      []uintptr
	// bad edges closed a cycle or broke the ranks when first seen. They
	// were reported, stay known (so they are reported once), and are left
	// out of path searches so the graph of good edges stays acyclic.
	bad          bool
	rankReported atomic.Bool
}

var graph struct {
	mu    sync.Mutex
	edges int
}

var (
	suppressed    atomic.Uint64 // cycles found infeasible by gated
	liveInstances atomic.Int64
	reportCount   atomic.Uint64
)

const (
	kindEdge = iota
	kindNest
	kindRecursive
	kindEvent // an edge to or from an event (see block_check.go)
)

// pending is a check that needs the slow path: a new edge, a rank
// violation not yet reported, a nesting or a recursion.
type pending struct {
	kind    int
	from    *Class
	rankBad bool
	chained bool // the held entry is chained (see check)
	// For kindEvent: the edge is from -> to, of relation rel.
	to  *Class
	rel Relation
}

// check compares an acquisition of k (class c) with the locks gl holds,
// under the shard lock. It returns what must be resolved on the slow path
// (nil when every edge is known and nothing is wrong), and whether the new
// entry is chained: acquired with only known good edges, so that every
// lock held below it is already ordered before c in the graph.
//
// Edges are looked up from the top of the stack down to the first chained
// entry; the locks below it reach c through it. Ranks, recursion and
// nesting are plain comparisons and are checked against every held lock.
//
// A per-instance class is never chained: it leaves the graph with its
// mutex, and with it any path through it, so an order it implied (S held,
// then r, then D: S before D) would be forgotten while S and D live on.
// Paths through chained entries only pass through classes that stay.
func check(gl *goroutineLocks, k *lockMeta, c *Class, group uint64) (todo []pending, chained bool) {
	chained = !c.perInstance
	implied := false
	groupSeen := false
	for i := len(gl.held) - 1; i >= 0; i-- {
		h := gl.held[i]
		if h.key == keyOf(k) {
			chained = false
			if !c.node.recursiveReported.Load() {
				todo = append(todo, pending{kind: kindRecursive, from: h.class})
			}
			continue
		}
		hc := h.class
		sameGroup := group != 0 && h.group == group
		if hc == c {
			// LockAll sanctions nesting within its set; its global order
			// makes it safe.
			if !sameGroup {
				chained = false
				if !c.node.nestReported.Load() {
					todo = append(todo, pending{kind: kindNest, from: hc})
				}
			}
			continue
		}
		rankBad := c.rank != 0 && hc.rank != 0 && hc.rank >= c.rank && !(sameGroup && hc.rank == c.rank)
		if implied && !rankBad {
			continue
		}
		if sameGroup && !rankBad {
			// LockAll takes its set in a global order, so consecutive
			// members imply the rest: only the latest one is checked.
			if groupSeen {
				continue
			}
			groupSeen = true
		}
		e := hc.node.out.Load().get(c)
		switch {
		case e == nil || (rankBad && !e.rankReported.Load()):
			// resolve stops at the first chained entry whose new edge
			// turns out good.
			todo = append(todo, pending{kind: kindEdge, from: hc, rankBad: rankBad, chained: h.chained})
			chained = false
		case e.bad:
			chained = false
		case h.chained:
			implied = true
		}
	}
	return todo, chained
}

// resolve handles the slow-path checks of one acquisition: it records new
// edges, searches for cycles, builds the reports and hands them to the
// handler after releasing the graph lock.
// resolve's held are the classes the goroutine holds (see sighting); read
// says whether the acquisition is a read lock.
func resolve(gid int64, c *Class, todo []pending, read bool, held []*Class) {
	pcs := make([]uintptr, 32)
	pcs = pcs[:runtime.Callers(3, pcs)]
	var reports []*OrderError
	var rank *OrderError
	implied := false
	graph.mu.Lock()
	for _, p := range todo {
		switch p.kind {
		case kindRecursive:
			if c.node.recursiveReported.CompareAndSwap(false, true) {
				reports = append(reports, single(ErrRecursive, p.from, c, gid, pcs))
			}
		case kindNest:
			if c.node.nestReported.CompareAndSwap(false, true) {
				reports = append(reports, single(ErrNesting, p.from, c, gid, pcs))
			}
		case kindEvent:
			if r, _ := addEdge(p.from, p.to, p.rel, false, sighting{gid: gid, pcs: pcs}); r != nil {
				reports = append(reports, r)
			}
		default:
			if implied && !p.rankBad {
				continue
			}
			r, good := addEdge(p.from, c, Acquired, p.rankBad, sighting{gid: gid, pcs: pcs, read: read, held: held})
			switch {
			case r != nil && errors.Is(r, ErrRank) && rank != nil:
				// One report per acquisition: every held lock that
				// outranks c is an edge of the same violation.
				rank.Edges = append(rank.Edges, r.Edges...)
			case r != nil && errors.Is(r, ErrRank):
				rank = r
				reports = append(reports, r)
			case r != nil:
				reports = append(reports, r)
			}
			// The locks held below a chained entry reach it through good
			// edges; if its edge to c is good, they reach c too.
			implied = implied || (p.chained && good)
		}
	}
	if rank != nil {
		rankCycle(rank)
	}
	graph.mu.Unlock()
	for _, r := range reports {
		r.atBlock = true
	}
	deliver(reports)
}

// deliver hands reports to the handler, after the graph lock is released.
func deliver(reports []*OrderError) {
	for _, r := range reports {
		if !firstOfItsKind(r) {
			suppressed.Add(1)
			continue
		}
		reportCount.Add(1)
		report(r)
	}
}

// seenReports holds the signature of every report delivered; see
// firstOfItsKind.
var seenReports sync.Map

// firstOfItsKind reports whether r is the first report of its bug. Shared
// classes are reported once per edge already; per-instance classes are new
// for every instance, so the signature names a per-instance class by its
// kind and first site instead of its identity (the same for every
// instance of one struct field first locked at one place). One field first
// locked at different places in different instances (a metalock first
// taken by Open in one DB and by a write transaction in another) would
// still be two names: two first sites are one name when an instance first
// locked at one of them was later locked at the other (see sameField). A
// cycle is rotated to start at its least class, so the same cycle closed
// from another of its edges is the same bug.
func firstOfItsKind(r *OrderError) bool {
	_, seen := seenReports.LoadOrStore(signature(r), true)
	return !seen
}

func signature(r *OrderError) string {
	canon := fields.canonical()
	name := func(c *Class) string {
		switch {
		case c == nil:
			return "?"
		case c.perInstance && c.site != "":
			return canon(c.site)
		default:
			return "#" + strconv.FormatUint(c.id, 10)
		}
	}
	tokens := make([]string, len(r.Edges))
	for i, e := range r.Edges {
		tokens[i] = name(e.fromClass) + ">" + name(e.toClass)
	}
	if isCycle(r.Edges) {
		least := 0
		for i := range tokens {
			if tokens[i] < tokens[least] {
				least = i
			}
		}
		tokens = append(tokens[least:], tokens[:least]...)
	}
	return r.Kind.Error() + "|" + strings.Join(tokens, "|")
}

// fields remembers which first sites of per-instance classes name one
// struct field: both are first sites of some instances, and one instance
// was locked at both.
var fields sameField

type sameField struct {
	mu    sync.Mutex
	first map[string]struct{}    // kind@site of every per-instance class's first use
	pairs map[[2]string]struct{} // {first site, a later acquisition site} of one instance
}

// noteFirst records a per-instance class's first site.
func (f *sameField) noteFirst(site string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first == nil {
		f.first = make(map[string]struct{})
	}
	f.first[site] = struct{}{}
}

// noteAcquired records that the instance whose class is c was locked at
// pcs' site, for a new edge into c (so at most once per edge).
func (f *sameField) noteAcquired(c *Class, pcs []uintptr) {
	if !c.perInstance || c.site == "" {
		return
	}
	kind, _, _ := strings.Cut(c.site, "@")
	at := kind + "@" + acquisitionSite(pcs)
	if at == c.site {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pairs == nil {
		f.pairs = make(map[[2]string]struct{})
	}
	f.pairs[[2]string{c.site, at}] = struct{}{}
}

// canonical returns a function naming each first site by the least first
// site of its field: a union of the pairs whose both sites are first
// sites, built when a report is delivered (rare), not on the hot path.
func (f *sameField) canonical() func(string) string {
	f.mu.Lock()
	parent := make(map[string]string)
	var find func(string) string
	find = func(s string) string {
		p, ok := parent[s]
		if !ok || p == s {
			return s
		}
		r := find(p)
		parent[s] = r
		return r
	}
	for pr := range f.pairs {
		if _, ok := f.first[pr[1]]; !ok {
			continue
		}
		a, b := find(pr[0]), find(pr[1])
		if a == b {
			continue
		}
		if b < a {
			a, b = b, a
		}
		parent[b] = a
	}
	f.mu.Unlock()
	return find
}

// isCycle reports whether edges close a cycle, each edge's class leading
// to the next one's and the last back to the first.
func isCycle(edges []Edge) bool {
	if len(edges) < 2 {
		return false
	}
	for i, e := range edges {
		if e.toClass == nil || e.toClass != edges[(i+1)%len(edges)].fromClass {
			return false
		}
	}
	return true
}

// acquisitionSite is the file:line of the first frame of pcs outside this
// package: the code that made the acquisition (or the blocking call).
func acquisitionSite(pcs []uintptr) string {
	if len(pcs) == 0 {
		return ""
	}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if !internalFrame(f) && f.File != "" {
			return filepath.Base(f.File) + ":" + strconv.Itoa(f.Line)
		}
		if !more {
			return ""
		}
	}
}

// rankCycle completes a rank report (graph.mu held). Its edges are the
// held locks that outrank the acquired class, one each; when the graph
// knows a path from the acquired class back to one of them, the report
// gets that path too, so that it shows the whole cycle the ranks forbid:
// the other offending edges, then the path, then the edge that closes it.
func rankCycle(r *OrderError) {
	for i, ed := range r.Edges {
		if path := findPath(ed.toClass, ed.fromClass); path != nil {
			others := append(append([]Edge(nil), r.Edges[:i]...), r.Edges[i+1:]...)
			r.Edges = append(append(others, edgesOf(path)...), ed)
			return
		}
	}
}

func edgesOf(path []*edge) []Edge {
	out := make([]Edge, 0, len(path))
	for _, pe := range path {
		out = append(out, Edge{From: pe.from.String(), To: pe.to.String(), Relation: pe.rel, Goroutine: pe.gid, pcs: pe.pcs, fromClass: pe.from, toClass: pe.to})
	}
	return out
}

func single(kind error, from, to *Class, gid int64, pcs []uintptr) *OrderError {
	return &OrderError{Kind: kind, Edges: []Edge{{From: from.String(), To: to.String(), Goroutine: gid, Current: true, pcs: pcs, fromClass: from, toClass: to}}}
}

// addEdge records from -> to (graph.mu held). It returns a report if the
// edge breaks the ranks or closes a cycle, and whether the edge is good
// (part of the acyclic graph).
// A sighting is the context of an edge's first observation.
type sighting struct {
	gid  int64
	pcs  []uintptr
	read bool     // the acquisition of to was a read lock
	held []*Class // the classes the goroutine held (for lock edges)
}

func addEdge(from, to *Class, rel Relation, rankBad bool, s sighting) (*OrderError, bool) {
	gid, pcs := s.gid, s.pcs
	old := from.node.out.Load()
	if e := old.get(to); e != nil {
		if rankBad && !e.rankReported.Load() {
			e.rankReported.Store(true)
			return single(ErrRank, from, to, gid, pcs), !e.bad
		}
		return nil, !e.bad
	}
	e := &edge{from: from, to: to, rel: rel, gid: gid, pcs: pcs, read: s.read, held: s.held}
	fields.noteAcquired(to, pcs)
	var r *OrderError
	if rankBad {
		e.bad = true
		e.rankReported.Store(true)
		r = single(ErrRank, from, to, gid, pcs)
	} else if path := findPath(to, from); path != nil && gated(append(path, e)) {
		// Cannot deadlock (see gated): known, never reported, and left
		// out of path searches like a reported edge.
		e.bad = true
		suppressed.Add(1)
	} else if path != nil {
		e.bad = true
		r = &OrderError{Kind: ErrInversion, Edges: edgesOf(path)}
		r.Edges = append(r.Edges, Edge{From: from.String(), To: to.String(), Relation: rel, Goroutine: gid, Current: true, pcs: pcs, fromClass: from, toClass: to})
		for _, ed := range r.Edges {
			if ed.Relation != Acquired {
				r.Kind = ErrBlocking
			}
		}
	}
	from.node.out.Store(old.with(to, e))
	if to.node.in == nil {
		to.node.in = make(map[*Class]struct{})
	}
	to.node.in[from] = struct{}{}
	graph.edges++
	return r, !e.bad
}

// gated reports whether a cycle cannot deadlock because of read locks and
// gate locks: an RLock blocks only behind a writer (held or waiting), and
// if every writer of that lock holds a gate lock G that another edge of
// the cycle was made under, the writer cannot be there while the cycle's
// other goroutine holds G, so the RLock does not block and the cycle
// cannot close (the false reports on bbolt's nested read transactions).
// Writers are those seen so far, and each edge's held locks are those of
// its first sighting: a later writer without the gate is not taken back.
func gated(cycle []*edge) bool {
	for i, x := range cycle {
		if !x.read || x.rel != Acquired {
			continue
		}
		gates := x.to.node.gates.Load()
		if gates == nil {
			continue
		}
		for j, y := range cycle {
			if j == i {
				continue
			}
			for _, g := range *gates {
				if slices.Contains(y.held, g) {
					return true
				}
			}
		}
	}
	return false
}

// maxGateDepth bounds the gate search to the outermost held locks (gates
// are outer locks), so that a writer holding a thousand locks costs no more
// than one holding a few. A gate held deeper counts as not held: fewer
// cycles are found infeasible, none wrongly.
const maxGateDepth = 8

// noteWriter narrows c's gate locks to those held now (held, excluding c),
// for a blocking write acquisition (graph.mu not needed: a CAS loop).
func noteWriter(c *Class, held []*heldLock) {
	held = held[:min(len(held), maxGateDepth)]
	for {
		old := c.node.gates.Load()
		if old != nil && len(*old) == 0 {
			return
		}
		var next []*Class
		if old == nil {
			for _, h := range held {
				if h.class != c && !slices.Contains(next, h.class) {
					next = append(next, h.class)
				}
			}
		} else {
			// Plain loops, not closures: this runs on every blocking
			// write acquisition, and a closure here escaped (24 B each).
			all := true
			for _, g := range *old {
				if !classHeld(held, g) {
					all = false
					break
				}
			}
			if all {
				return // every gate is held: nothing changes, no allocation
			}
			for _, g := range *old {
				if classHeld(held, g) {
					next = append(next, g)
				}
			}
			if len(next) == len(*old) {
				return
			}
		}
		// A fresh pointer only when something changes: taking &next
		// would move next to the heap on every call.
		p := new([]*Class)
		*p = next
		if c.node.gates.CompareAndSwap(old, p) {
			return
		}
	}
}

// classHeld reports whether a lock of class g is among held.
func classHeld(held []*heldLock, g *Class) bool {
	for _, h := range held {
		if h.class == g {
			return true
		}
	}
	return false
}

// findPath returns the shortest path of good edges from start to target,
// or nil. Breadth-first, so reports show the tightest cycle.
func findPath(start, target *Class) []*edge {
	via := map[*Class]*edge{start: nil}
	queue := []*Class{start}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for next, e := range n.node.out.Load().all {
			if e.bad {
				continue
			}
			if _, seen := via[next]; seen {
				continue
			}
			via[next] = e
			if next == target {
				var path []*edge
				for c := target; c != start; c = via[c].from {
					path = append(path, via[c])
				}
				for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return path
			}
			queue = append(queue, next)
		}
	}
	return nil
}

// dropClass unlinks a per-instance class whose mutex was collected.
func dropClass(c *Class) {
	graph.mu.Lock()
	for from := range c.node.in {
		from.node.out.Store(from.node.out.Load().without(c))
		graph.edges--
	}
	for to := range c.node.out.Load().all {
		delete(to.node.in, c)
		graph.edges--
	}
	c.node.in = nil
	c.node.out.Store(nil)
	graph.mu.Unlock()
	liveInstances.Add(-1)
}

// Stats returns a snapshot of the checker's counters. In production builds
// it returns the zero CheckerStats.
func Stats() CheckerStats {
	graph.mu.Lock()
	edges := graph.edges
	graph.mu.Unlock()
	return CheckerStats{
		Enabled:         true,
		FastGoroutineID: goidOffset >= 0,
		Edges:           edges,
		InstanceClasses: liveInstances.Load(),
		Reports:         reportCount.Load(),
	}
}

// report delivers err to the installed handler, or panics with it.
func report(err *OrderError) {
	if p := handler.Load(); p != nil {
		(*p)(err)
		return
	}
	panic(err)
}
