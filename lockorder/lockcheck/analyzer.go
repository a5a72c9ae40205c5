package lockcheck

import (
	"fmt"
	"go/token"
	"go/types"
	"path/filepath"
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
	case callLockAll:
		for _, ref := range c.lockArgs(cc) {
			if h, ok := s.held[ref.key()]; ok {
				c.reportRelock(call.Pos(), ref.desc, h, false, "")
			}
			c.addEdges(s.held, ref, call.Pos(), "")
		}
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
	sort.Slice(hs, func(i, j int) bool {
		if hs[i].pos != hs[j].pos {
			return hs[i].pos < hs[j].pos
		}
		return hs[i].ref.desc < hs[j].ref.desc // LockAll takes several at one place
	})
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
	it := "it"
	if len(hs) > 1 {
		it = "one of them"
	}
	c.report(pos, "%s while %s; a goroutine that needs %s to unblock this one deadlocks with it%s",
		what, c.heldList(hs, pos), it, peer)
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
