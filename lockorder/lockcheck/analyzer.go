package lockcheck

import (
	"fmt"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/passes/buildssa"
	"golang.org/x/tools/go/ssa"
)

// Analyzer reports blocking operations made while a mutex is held, lock
// order inversions between the functions of a package, and pointers into a
// changuard.Guarded value that escape the callback they were lent to. See
// the package documentation for the rules and how to silence a report.
var Analyzer = &analysis.Analyzer{
	Name:     "lockcheck",
	Doc:      doc,
	Requires: []*analysis.Analyzer{buildssa.Analyzer},
	Run:      run,
}

const doc = `report deadlock hazards: blocking while holding a mutex, lock order inversions, escaping Guarded pointers

lockcheck reports, before they hang a service:
  - sends on unbuffered channels, receives, select without default,
    sync.WaitGroup.Wait, sync.Cond.Wait with a lock other than its own held,
    time.Sleep, network calls, blocking garrison calls, and calls to
    functions of the package that wait for another goroutine, made while a
    sync or lockorder mutex is held on every path to them;
  - a mutex locked again while held (also through a call), sync.Once.Do of
    a function that takes a lock held around the Do, and an early return
    that keeps a lock a later return releases;
  - two functions of a package taking the same locks in opposite orders;
  - a pointer lent to a changuard.Guarded or Owner callback escaping it.

A report is silenced by a "//lockcheck:ignore reason" comment on its line
or the line above.`

// ignoreDirective silences the report on its line or on the next line.
const ignoreDirective = "//lockcheck:ignore"

// checker holds the state of one pass over one package.
type checker struct {
	pass *analysis.Pass
	pkg  *types.Package
	sums map[*ssa.Function]*summary

	condByKey   map[string]lockRef // cond variable key -> the mutex it was made with
	condByClass map[string]lockRef
	callbacks   map[*ssa.Function]holding // Guarded callbacks: the lock they run under

	slots map[string]*slotState // channel slots, see buffered.go
	peers map[string][]peerOp   // the other sides of waits, see peers.go

	edges  map[[2]string]orderEdge
	onces  []onceSite
	onceFn map[string][]acquisition // Once class -> locks taken by the functions passed to its Do

	ignored  map[string]map[int]bool
	reported map[string]bool
}

// orderEdge is the first place where lock class to was taken while class
// from was held.
type orderEdge struct {
	from, to string
	pos      token.Pos // the acquisition of to (or the call leading to it)
	heldPos  token.Pos // where from was acquired
	via      string
}

// onceSite is a Once.Do made while locks were held.
type onceSite struct {
	once string
	held []holding
	pos  token.Pos
}

func run(pass *analysis.Pass) (any, error) {
	in := pass.ResultOf[buildssa.Analyzer].(*buildssa.SSA)
	c := &checker{
		pass: pass, pkg: pass.Pkg,
		sums:        map[*ssa.Function]*summary{},
		condByKey:   map[string]lockRef{},
		condByClass: map[string]lockRef{},
		callbacks:   map[*ssa.Function]holding{},
		edges:       map[[2]string]orderEdge{},
		onceFn:      map[string][]acquisition{},
		ignored:     ignoredLines(pass),
		reported:    map[string]bool{},
		slots:       map[string]*slotState{},
		peers:       map[string][]peerOp{},
	}
	funcs := in.SrcFuncs
	c.prepass(funcs)
	c.noteChanStores(funcs)
	c.summarize(funcs)
	c.notePeers(funcs)
	for _, fn := range funcs {
		c.check(fn)
		c.checkEscapes(fn)
	}
	c.reportOnceCycles()
	c.reportInversions()
	return nil, nil
}

func ignoredLines(pass *analysis.Pass) map[string]map[int]bool {
	out := map[string]map[int]bool{}
	for _, f := range pass.Files {
		for _, cg := range f.Comments {
			for _, cm := range cg.List {
				if strings.HasPrefix(cm.Text, ignoreDirective) {
					p := pass.Fset.Position(cm.Pos())
					if out[p.Filename] == nil {
						out[p.Filename] = map[int]bool{}
					}
					out[p.Filename][p.Line] = true
				}
			}
		}
	}
	return out
}

// report emits one diagnostic unless it is silenced or already emitted.
func (c *checker) report(pos token.Pos, format string, args ...any) {
	p := c.pass.Fset.Position(pos)
	if lines := c.ignored[p.Filename]; lines[p.Line] || lines[p.Line-1] {
		return
	}
	msg := fmt.Sprintf(format, args...)
	k := fmt.Sprint(pos, msg)
	if c.reported[k] {
		return
	}
	c.reported[k] = true
	c.pass.Reportf(pos, "%s", msg)
}

// where formats a position for a message: "file.go:12" in the same
// directory, "line 12" in the same file.
func (c *checker) where(pos, from token.Pos) string {
	p, q := c.pass.Fset.Position(pos), c.pass.Fset.Position(from)
	if p.Filename == q.Filename {
		return fmt.Sprintf("line %d", p.Line)
	}
	return fmt.Sprintf("%s:%d", filepath.Base(p.Filename), p.Line)
}

// prepass finds the mutex of each sync.Cond and the Guarded callbacks.
func (c *checker) prepass(funcs []*ssa.Function) {
	for _, fn := range funcs {
		for _, b := range fn.Blocks {
			for _, instr := range b.Instrs {
				call, ok := instr.(*ssa.Call)
				if !ok {
					continue
				}
				ce, ok := calleeOf(call.Common())
				if !ok {
					continue
				}
				if ce.name == "NewCond" && ce.recv == "" && (ce.pkg == "sync" || ce.pkg == garrison+"lockorder") && len(call.Call.Args) == 1 {
					c.noteCond(call, refOf(c.pkg, call.Call.Args[0]))
				}
				if kind, _ := classify(call.Common()); kind == callCallback {
					c.noteCallback(call, ce)
				}
			}
		}
	}
}

func (c *checker) noteCond(call *ssa.Call, l lockRef) {
	c.condByKey[refOf(c.pkg, call).key()] = l
	for _, r := range *call.Referrers() {
		if st, ok := r.(*ssa.Store); ok && st.Val == call {
			cr := refOf(c.pkg, st.Addr)
			c.condByKey[cr.key()] = l
			if cr.class != "" {
				c.condByClass[cr.class] = l
			}
		}
	}
}

func (c *checker) noteCallback(call *ssa.Call, ce callee) {
	i := guardedCallbacks[ce.recv+"."+ce.name]
	if ce.recv == "" {
		i = guardedCallbacks[ce.name]
	}
	args := call.Call.Args
	if i >= len(args) {
		return
	}
	var fn *ssa.Function
	switch f := args[i].(type) {
	case *ssa.MakeClosure:
		fn, _ = f.Fn.(*ssa.Function)
	case *ssa.Function:
		fn = f
	}
	if fn == nil || fn.Parent() == nil {
		return // a named function may also be called without the lock
	}
	g := refOf(c.pkg, args[0])
	g.desc = "the lock of Guarded " + g.desc
	g.root, g.path, g.local = guardedRoot{}, "", false
	c.callbacks[fn] = holding{ref: g, pos: call.Pos()}
}

// guardedRoot is the root of the pseudo-lock a Guarded callback runs under.
type guardedRoot struct{ ssa.Value }

// check walks fn with its must-lockset and reports what it finds.
func (c *checker) check(fn *ssa.Function) {
	init := newState()
	if h, ok := c.callbacks[fn]; ok {
		init.held["guarded"] = h
	}
	must := c.flow(fn, init, true)
	may := c.flow(fn, init, false)
	var rets []retInfo
	for _, b := range fn.Blocks {
		if must[b.Index] == nil || may[b.Index] == nil {
			continue
		}
		s, m := must[b.Index], may[b.Index]
		for _, instr := range b.Instrs {
			c.visit(fn, s, instr)
			if r, ok := instr.(*ssa.Return); ok {
				rets = append(rets, retInfo{pos: r.Pos(), must: s.clone(), may: m.clone(), release: returnsFunc(r)})
			}
			c.transfer(fn, s, instr)
			c.transfer(fn, m, instr)
		}
	}
	c.checkReturns(fn, rets)
}

// visit reports what instr does under the locks of s (held on all paths).
func (c *checker) visit(fn *ssa.Function, s *state, instr ssa.Instruction) {
	switch in := instr.(type) {
	case *ssa.Send, *ssa.UnOp, *ssa.Select:
		if what, pos := c.blocking(instr); what != "" {
			c.reportHeld(s.held, nil, pos, what, instr)
		}
	case *ssa.Call:
		c.visitCall(fn, s, in)
	}
}

func (c *checker) visitCall(fn *ssa.Function, s *state, call *ssa.Call) {
	cc := call.Common()
	kind, what := classify(cc)
	switch kind {
	case callLock, callRLock:
		ref := c.ref(cc)
		if h, ok := s.held[ref.key()]; ok {
			c.reportRelock(call.Pos(), ref.desc, h, kind == callRLock, "")
		}
		c.addEdges(s.held, ref, call.Pos(), "")
	case callBlock:
		c.reportHeld(s.held, nil, call.Pos(), what, call)
	case callCondWait:
		c.condWait(s, call, what)
	case callOnceDo:
		c.onceDo(s, call, what)
	case callOther:
		sum, args := c.local(cc)
		if sum == nil {
			return
		}
		released := map[string]bool{}
		for _, a := range sum.releases {
			released[c.mapRef(a.ref, sum.fn, args).key()] = true
		}
		name := calleeName(sum.fn)
		for _, a := range sum.acquires {
			m := c.mapRef(a.ref, sum.fn, args)
			if h, ok := s.held[m.key()]; ok && !released[m.key()] {
				c.reportRelock(call.Pos(), m.desc, h, a.read, join(name, a.via))
			}
			c.addEdges(s.held, m, call.Pos(), join(name, a.via))
		}
		if sum.blocks != nil {
			what := fmt.Sprintf("call to %s, which may block (%s at %s)",
				name, sum.blocks.what, c.where(sum.blocks.pos, call.Pos()))
			if sum.blocks.via != "" {
				what = fmt.Sprintf("call to %s, which may block (%s in %s at %s)",
					name, sum.blocks.what, sum.blocks.via, c.where(sum.blocks.pos, call.Pos()))
			}
			c.reportHeld(s.held, released, call.Pos(), what, nil)
		}
	}
}

func calleeName(fn *ssa.Function) string {
	if fn.Parent() != nil {
		return "the func literal"
	}
	if recv := fn.Signature.Recv(); recv != nil {
		t := recv.Type()
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		if n, ok := types.Unalias(t).(*types.Named); ok {
			return n.Obj().Name() + "." + fn.Name()
		}
	}
	return fn.Name()
}

// sortedHeld lists held locks in acquisition order, leaving out except.
func sortedHeld(held map[string]holding, except map[string]bool) []holding {
	var hs []holding
	for k, h := range held {
		if !except[k] {
			hs = append(hs, h)
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].pos < hs[j].pos })
	return hs
}

// reportHeld reports a blocking operation if a lock is held on every path
// to it. The guess about who waits for whom is the reader's; the message
// says which lock and where it was taken.
func (c *checker) reportHeld(held map[string]holding, except map[string]bool, pos token.Pos, what string, instr ssa.Instruction) {
	hs := sortedHeld(held, except)
	if len(hs) == 0 {
		return
	}
	peer := ""
	if instr != nil {
		peer = c.peerNeeds(instr, hs)
	}
	c.report(pos, "%s while %s; a goroutine that needs it to unblock this one deadlocks with it%s",
		what, c.heldList(hs, pos), peer)
}

func (c *checker) heldList(hs []holding, pos token.Pos) string {
	var parts []string
	for _, h := range hs {
		how := "held"
		if h.read {
			how = "read-locked"
		}
		if _, ok := h.ref.root.(guardedRoot); ok {
			parts = append(parts, fmt.Sprintf("%s is held (callback passed at %s)", h.ref.desc, c.where(h.pos, pos)))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s is %s (locked at %s)", h.ref.desc, how, c.where(h.pos, pos)))
	}
	return strings.Join(parts, " and ")
}

func (c *checker) reportRelock(pos token.Pos, desc string, h holding, read bool, via string) {
	by := ""
	if via != "" {
		by = " by the call to " + via
	}
	switch {
	case h.read && read:
		c.report(pos, "%s is read-locked again%s while read-locked (at %s): a recursive RLock deadlocks as soon as a writer waits between the two",
			desc, by, c.where(h.pos, pos))
	default:
		c.report(pos, "%s is locked again%s while held (locked at %s): the goroutine deadlocks with itself",
			desc, by, c.where(h.pos, pos))
	}
}

// condWait reports a Cond.Wait made while a lock other than the Cond's own
// is held: Wait releases only c.L, so the goroutine that would Signal
// cannot take the other lock.
func (c *checker) condWait(s *state, call *ssa.Call, what string) {
	if len(call.Call.Args) == 0 {
		return
	}
	cr := refOf(c.pkg, addrOf(call.Call.Args[0]))
	l, known := c.condByKey[cr.key()]
	if !known && cr.class != "" {
		l, known = c.condByClass[cr.class]
	}
	except := map[string]bool{}
	for k, h := range s.held {
		if k == cr.key()+".L" || known && (k == l.key() || l.class != "" && h.ref.class == l.class) {
			except[k] = true
		}
	}
	if !known && len(except) == 0 && len(s.held) == 1 {
		return // the one lock held is presumably c.L
	}
	c.reportHeld(s.held, except, call.Pos(), what+" (which releases only the Cond's own lock)", call)
}

// onceDo reports once.Do(f) where f takes a lock held around the call, and
// records the site for the cross-function check in reportOnceCycles.
func (c *checker) onceDo(s *state, call *ssa.Call, what string) {
	args := call.Call.Args
	if len(args) < 2 {
		return
	}
	once := refOf(c.pkg, addrOf(args[0]))
	sum, bound := c.funcArg(args[1])
	if sum != nil {
		for _, a := range sum.acquires {
			m := c.mapRef(a.ref, sum.fn, bound)
			if h, ok := s.held[m.key()]; ok {
				c.report(call.Pos(), "%s of a function that locks %s (at %s) while it is held (locked at %s): the goroutine deadlocks with itself",
					what, m.desc, c.where(a.pos, call.Pos()), c.where(h.pos, call.Pos()))
			}
			if once.class != "" {
				c.onceFn[once.class] = append(c.onceFn[once.class], acquisition{ref: m, pos: call.Pos(), read: a.read})
			}
		}
	}
	if once.class != "" && len(s.held) > 0 {
		c.onces = append(c.onces, onceSite{once: once.class, held: sortedHeld(s.held, nil), pos: call.Pos()})
	}
}

// reportOnceCycles reports a Once.Do made while holding a lock that a
// function passed to another Do of the same Once takes: if the other Do
// runs first, it waits for the lock and this one waits for it.
func (c *checker) reportOnceCycles() {
	for _, site := range c.onces {
	next:
		for _, a := range c.onceFn[site.once] {
			if a.pos == site.pos || a.ref.class == "" {
				continue
			}
			for _, h := range site.held {
				if h.ref.class == a.ref.class {
					c.report(site.pos, "%s.Do while %s is held (locked at %s), but the Do at %s runs a function that locks %s: a cycle through the Once's lock",
						site.once, h.ref.desc, c.where(h.pos, site.pos), c.where(a.pos, site.pos), a.ref.class)
					break next
				}
			}
		}
	}
}

// retInfo is the lockset at one return.
type retInfo struct {
	pos       token.Pos
	must, may *state
	release   bool // returns a func: the caller is handed the Unlock
}

// checkReturns reports a return that leaves a lock held on every path to
// it while a later return of the function releases the same lock: the
// classic missing Unlock on an early return, which deadlocks the next
// goroutine that locks it. The reverse (release on an early error return,
// return holding the lock at the end) is a lock-and-check helper, and a
// return that hands the caller a func is handing it the Unlock.
func (c *checker) checkReturns(fn *ssa.Function, rets []retInfo) {
	if len(rets) < 2 {
		return
	}
	for _, r := range rets {
		if r.may.opaqueDefer || r.release || !r.pos.IsValid() {
			continue
		}
		for k, h := range r.must.held {
			if r.may.deferred[k] || !r.must.acquired[k] && !r.may.acquired[k] {
				continue
			}
			for _, o := range rets {
				if o.pos > r.pos && o.may.acquired[k] && (o.must.deferred[k] || o.may.held[k].pos == token.NoPos) {
					c.report(r.pos, "return with %s held (locked at %s), but the return at %s releases it: a missing Unlock deadlocks the next Lock",
						h.ref.desc, c.where(h.pos, r.pos), c.where(o.pos, r.pos))
					break
				}
			}
		}
	}
}

func returnsFunc(r *ssa.Return) bool {
	for _, v := range r.Results {
		if _, ok := v.Type().Underlying().(*types.Signature); ok {
			return true
		}
	}
	return false
}

// addEdges records "to was acquired while each lock of held was held".
// Only classes declared in this package take part: a field of another
// package's type names no role this package controls.
func (c *checker) addEdges(held map[string]holding, to lockRef, pos token.Pos, via string) {
	if to.class == "" || !to.local {
		return
	}
	for _, h := range held {
		if h.ref.class == "" || !h.ref.local || h.ref.class == to.class {
			continue
		}
		k := [2]string{h.ref.class, to.class}
		if _, ok := c.edges[k]; !ok {
			c.edges[k] = orderEdge{from: h.ref.class, to: to.class, pos: pos, heldPos: h.pos, via: via}
		}
	}
}

// reportInversions reports every cycle in the lock order graph once, at
// each of its edges, naming the other edges' sites.
func (c *checker) reportInversions() {
	out := map[string][]string{}
	for k := range c.edges {
		out[k[0]] = append(out[k[0]], k[1])
	}
	for _, v := range out {
		slices.Sort(v)
	}
	done := map[string]bool{}
	keys := make([][2]string, 0, len(c.edges))
	for k := range c.edges {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c.edges[keys[i]].pos < c.edges[keys[j]].pos })
	for _, k := range keys {
		path := c.shortestPath(out, k[1], k[0])
		if path == nil {
			continue
		}
		cycle := append([]string{k[0]}, path...) // k[0] -> k[1] -> ... -> k[0]
		sig := slices.Clone(cycle[:len(cycle)-1])
		slices.Sort(sig)
		if done[strings.Join(sig, ",")] {
			continue
		}
		done[strings.Join(sig, ",")] = true
		c.reportCycle(cycle)
	}
}

func (c *checker) shortestPath(out map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == to {
			var path []string
			for ; n != ""; n = prev[n] {
				path = append([]string{n}, path...)
			}
			return path
		}
		for _, m := range out[n] {
			if _, seen := prev[m]; !seen {
				prev[m] = n
				queue = append(queue, m)
			}
		}
	}
	return nil
}

func (c *checker) reportCycle(cycle []string) {
	edges := make([]orderEdge, len(cycle)-1)
	for i := range edges {
		edges[i] = c.edges[[2]string{cycle[i], cycle[i+1]}]
	}
	for i, e := range edges {
		var others []string
		for j := 1; j < len(edges); j++ {
			o := edges[(i+j)%len(edges)]
			others = append(others, fmt.Sprintf("%s then %s at %s", o.from, o.to, c.where(o.pos, e.pos)))
		}
		via := ""
		if e.via != "" {
			via = " (in " + e.via + ")"
		}
		c.report(e.pos, "lock order inversion: %s acquired%s while %s is held (locked at %s), but %s: goroutines taking both orders deadlock",
			e.to, via, e.from, c.where(e.heldPos, e.pos), strings.Join(others, ", "))
	}
}
