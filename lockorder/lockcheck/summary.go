package lockcheck

import (
	"fmt"
	"go/token"
	"go/types"
	"maps"

	"golang.org/x/tools/go/ssa"
)

// A summary is what a function of the analyzed package does to locks, as
// seen by its callers: the locks it (or a function it calls) acquires and
// the locks it releases without having acquired them, in terms of its own
// parameters, free variables and globals, and the first operation through
// which it may block.
type summary struct {
	fn       *ssa.Function
	acquires []acquisition
	releases []acquisition
	// holds are the locks the function acquires and still holds at every
	// return: a lock helper (func (s *S) lock() { s.mu.Lock() }).
	holds  []acquisition
	blocks *blockSite
}

// An acquisition is a lock taken (or released) at pos, possibly in a
// callee: via names the call chain for messages ("s.flush → s.write").
type acquisition struct {
	ref  lockRef
	read bool
	pos  token.Pos
	via  string
}

// A blockSite is an operation that may block, and where it is.
type blockSite struct {
	what  string
	pos   token.Pos
	via   string
	depth int // calls between the summarized function and the operation
}

// maxBlockDepth bounds how far a blocking operation is followed through
// calls: a wait more than two calls down is usually guarded by state the analysis
// does not see, and the report would be hard to act on.
const maxBlockDepth = 1

// coordination reports whether instr waits for another goroutine (a
// channel, a select, a WaitGroup or a garrison wait) rather than for I/O
// or time. Only those are followed into callers: a lock that serializes
// writes to a connection is held across the write by design, and deep
// I/O under a lock is latency, not a deadlock.
func coordination(instr ssa.Instruction) bool {
	call, ok := instr.(*ssa.Call)
	if !ok {
		return true
	}
	ce, _ := calleeOf(call.Common())
	switch ce.pkg {
	case "time", "net", "net/http", "os/exec":
		return false
	}
	return true
}

// maxAcquisitions bounds a summary: beyond it, a function takes so many
// locks that reporting more of them would not help the reader.
const maxAcquisitions = 32

// local returns the summary of the package function a call statically
// invokes, and the values bound to that function's parameters followed by
// its free variables; nil if the callee is not in the analyzed package.
func (c *checker) local(cc *ssa.CallCommon) (*summary, []ssa.Value) {
	if cc.IsInvoke() {
		return nil, nil
	}
	switch v := cc.Value.(type) {
	case *ssa.Function:
		if sum := c.sums[v]; sum != nil {
			return sum, cc.Args
		}
	case *ssa.MakeClosure:
		fn, _ := v.Fn.(*ssa.Function)
		if sum := c.sums[fn]; sum != nil {
			return sum, append(append([]ssa.Value(nil), cc.Args...), v.Bindings...)
		}
	}
	return nil, nil
}

// funcArg returns the summary of a func value passed as an argument (the f
// of once.Do(f)) and the values bound to its free variables.
func (c *checker) funcArg(v ssa.Value) (*summary, []ssa.Value) {
	switch v := v.(type) {
	case *ssa.Function:
		return c.sums[v], nil
	case *ssa.MakeClosure:
		fn, _ := v.Fn.(*ssa.Function)
		if sum := c.sums[fn]; sum != nil {
			return sum, append(make([]ssa.Value, len(fn.Params)), v.Bindings...)
		}
		// A method value (r.init): a bound wrapper whose one free variable
		// is the receiver.
		if fn == nil {
			return nil, nil
		}
		if m, ok := fn.Object().(*types.Func); ok && len(v.Bindings) == 1 {
			if sum := c.sums[fn.Prog.FuncValue(m)]; sum != nil {
				return sum, v.Bindings
			}
		}
	}
	return nil, nil
}

// mapRef translates a lock named in callee's terms into the caller's, given
// the values bound to the callee's parameters and free variables. A lock
// rooted in the callee's own locals keeps its class but gets a root no
// lock of the caller has.
func (c *checker) mapRef(r lockRef, callee *ssa.Function, args []ssa.Value) lockRef {
	var bound ssa.Value
	switch root := r.root.(type) {
	case *ssa.Parameter:
		for i, p := range callee.Params {
			if p == root && i < len(args) {
				bound = args[i]
			}
		}
	case *ssa.FreeVar:
		for i, fv := range callee.FreeVars {
			if fv == root && len(callee.Params)+i < len(args) {
				bound = args[len(callee.Params)+i]
			}
		}
	case *ssa.Global:
		return r
	}
	if bound == nil {
		return lockRef{root: opaqueRoot{r.root}, path: r.path, class: r.class, local: r.local, desc: r.desc}
	}
	base := refOf(c.pkg, bound)
	out := lockRef{root: base.root, path: base.path + r.path, class: r.class, local: r.local,
		desc: base.desc + r.path}
	if base.class != "" {
		// The caller names the role more precisely: &c.in passed to a
		// method of halfConn that locks its Mutex is Conn.in.Mutex.
		out.class, out.local = base.class+r.path, base.local
	}
	return out
}

// opaqueRoot wraps a callee-local root so that no caller key equals it.
type opaqueRoot struct{ ssa.Value }

func (o opaqueRoot) String() string { return fmt.Sprintf("opaque %p", o.Value) }

// summarize computes the direct part of every summary, then propagates
// callee summaries into callers until nothing changes.
func (c *checker) summarize(funcs []*ssa.Function) {
	for _, fn := range funcs {
		c.sums[fn] = &summary{fn: fn}
	}
	for _, fn := range funcs {
		c.direct(fn)
	}
	for round := 0; round < 10; round++ {
		changed := false
		for _, fn := range funcs {
			if c.propagate(fn) {
				changed = true
			}
		}
		if !changed {
			return
		}
	}
}

// direct records the locks fn itself takes and releases and its first
// blocking operation. Releases are found with a may-analysis: an Unlock of
// a lock that no path through fn acquired releases the caller's hold.
func (c *checker) direct(fn *ssa.Function) {
	sum := c.sums[fn]
	c.holdsAtReturn(fn)
	ins := c.flow(fn, newState(), false)
	for _, b := range fn.Blocks {
		if ins[b.Index] == nil {
			continue
		}
		s := ins[b.Index]
		for _, instr := range b.Instrs {
			if call, ok := instr.(*ssa.Call); ok {
				kind, _ := classify(call.Common())
				switch kind {
				case callLock, callRLock:
					sum.addAcq(&sum.acquires, acquisition{ref: c.ref(call.Common()), read: kind == callRLock, pos: call.Pos()})
				case callLockAll:
					for _, ref := range c.lockArgs(call.Common()) {
						sum.addAcq(&sum.acquires, acquisition{ref: ref, pos: call.Pos()})
					}
				case callUnlock, callRUnlock:
					ref := c.ref(call.Common())
					if !s.acquired[ref.key()] {
						sum.addAcq(&sum.releases, acquisition{ref: ref, pos: call.Pos()})
					}
				}
			}
			if what, pos := c.blocking(instr); what != "" && sum.blocks == nil && coordination(instr) {
				sum.blocks = &blockSite{what: what, pos: pos}
			}
			c.transfer(fn, s, instr)
		}
	}
}

// holdsAtReturn records the locks fn takes and holds at every return.
func (c *checker) holdsAtReturn(fn *ssa.Function) {
	if fn.Parent() != nil {
		return // a closure called in place is followed by its caller's lockset
	}
	ins := c.flow(fn, newState(), true)
	var common map[string]holding
	for _, b := range fn.Blocks {
		if ins[b.Index] == nil {
			continue
		}
		s := ins[b.Index]
		for _, instr := range b.Instrs {
			if _, ok := instr.(*ssa.Return); ok {
				if common == nil {
					common = maps.Clone(s.held)
				} else {
					for k := range common {
						if _, ok := s.held[k]; !ok {
							delete(common, k)
						}
					}
				}
				for k := range s.deferred {
					delete(common, k)
				}
			}
			c.transfer(fn, s, instr)
		}
	}
	sum := c.sums[fn]
	for _, h := range sortedHeld(common, nil) {
		sum.addAcq(&sum.holds, acquisition{ref: h.ref, read: h.read, pos: h.pos})
	}
}

// propagate adds to fn's summary what its callees in the package do.
func (c *checker) propagate(fn *ssa.Function) bool {
	sum := c.sums[fn]
	changed := false
	for _, b := range fn.Blocks {
		for _, instr := range b.Instrs {
			call, ok := instr.(*ssa.Call)
			if !ok {
				continue
			}
			callee, args := c.local(call.Common())
			if callee == nil || callee == sum {
				continue
			}
			name := callee.fn.Name()
			for _, a := range callee.acquires {
				m := acquisition{ref: c.mapRef(a.ref, callee.fn, args), read: a.read, pos: call.Pos(), via: join(name, a.via)}
				if sum.addAcq(&sum.acquires, m) {
					changed = true
				}
			}
			for _, a := range callee.releases {
				m := acquisition{ref: c.mapRef(a.ref, callee.fn, args), pos: call.Pos(), via: join(name, a.via)}
				if sum.addAcq(&sum.releases, m) {
					changed = true
				}
			}
			if sum.blocks == nil && callee.blocks != nil && callee.blocks.depth < maxBlockDepth {
				sum.blocks = &blockSite{what: callee.blocks.what, pos: callee.blocks.pos,
					via: join(name, callee.blocks.via), depth: callee.blocks.depth + 1}
				changed = true
			}
		}
	}
	return changed
}

func join(name, via string) string {
	if via == "" {
		return name
	}
	return name + " → " + via
}

// addAcq appends a unless a lock with its key and class is already listed.
func (s *summary) addAcq(list *[]acquisition, a acquisition) bool {
	if len(*list) >= maxAcquisitions || a.ref.root == nil {
		return false
	}
	for _, b := range *list {
		if b.ref.key() == a.ref.key() && b.ref.class == a.ref.class && b.read == a.read {
			return false
		}
	}
	*list = append(*list, a)
	return true
}

// blocking names the operation instr performs if it may block waiting for
// another goroutine; Cond.Wait and Once.Do are judged by the caller.
func (c *checker) blocking(instr ssa.Instruction) (string, token.Pos) {
	switch in := instr.(type) {
	case *ssa.Send:
		if c.buffered(in.Chan) {
			return "", token.NoPos
		}
		return "channel send", in.Pos()
	case *ssa.UnOp:
		if in.Op == token.ARROW {
			return "channel receive", in.Pos()
		}
	case *ssa.Select:
		// select {} parks the goroutine for good on purpose (a crash dump
		// keeper, a main that serves forever): it waits for no one.
		if in.Blocking && len(in.States) > 0 {
			return "select without default", in.Pos()
		}
	case *ssa.Call:
		if kind, what := classify(in.Common()); kind == callBlock {
			return what, in.Pos()
		}
	}
	return "", token.NoPos
}
