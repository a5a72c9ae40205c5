package lockcheck

import (
	"go/token"
	"maps"

	"golang.org/x/tools/go/ssa"
)

// holding is one lock in a lockset: which mutex, how, and where it was taken.
type holding struct {
	ref  lockRef
	read bool
	pos  token.Pos
}

// state is the lockset at one program point. In a must-analysis a lock is
// in held only if it is held on every path to the point; in a
// may-analysis, on some path. deferred holds the locks whose Unlock has
// been deferred, acquired the locks taken by this function so far.
type state struct {
	held     map[string]holding
	deferred map[string]bool
	acquired map[string]bool
	// opaqueDefer is set when a deferred call might release a lock the
	// analysis cannot name (a func value, lockorder.UnlockAll).
	opaqueDefer bool
}

func newState() *state {
	return &state{held: map[string]holding{}, deferred: map[string]bool{}, acquired: map[string]bool{}}
}

func (s *state) clone() *state {
	return &state{held: maps.Clone(s.held), deferred: maps.Clone(s.deferred),
		acquired: maps.Clone(s.acquired), opaqueDefer: s.opaqueDefer}
}

func (s *state) equal(t *state) bool {
	if s.opaqueDefer != t.opaqueDefer || len(s.held) != len(t.held) ||
		!maps.Equal(s.deferred, t.deferred) || !maps.Equal(s.acquired, t.acquired) {
		return false
	}
	for k, h := range s.held {
		if u, ok := t.held[k]; !ok || u.read != h.read {
			return false
		}
	}
	return true
}

// merge joins the state flowing in from another predecessor: intersection
// for a must-analysis, union for a may-analysis.
func (s *state) merge(t *state, must bool) {
	if must {
		for k, h := range s.held {
			if u, ok := t.held[k]; !ok {
				delete(s.held, k)
			} else if u.read && !h.read {
				s.held[k] = u // held on both paths, for writing on one only
			}
		}
		for k := range s.deferred {
			if !t.deferred[k] {
				delete(s.deferred, k)
			}
		}
	} else {
		for k, h := range t.held {
			if _, ok := s.held[k]; !ok {
				s.held[k] = h
			}
		}
		maps.Copy(s.deferred, t.deferred)
	}
	maps.Copy(s.acquired, t.acquired) // only read as "on some path"
	s.opaqueDefer = s.opaqueDefer || t.opaqueDefer
}

// release removes a lock released through ref. When no held lock has ref's
// key (the Unlock names the mutex through an expression the Lock did not
// use), every held lock of the same class, or of no class, is released:
// a lock wrongly kept would make every later call a report, a lock wrongly
// dropped only a missed one.
func (s *state) release(ref lockRef) {
	if _, ok := s.held[ref.key()]; ok {
		delete(s.held, ref.key())
		return
	}
	for k, h := range s.held {
		if h.ref.class == ref.class {
			delete(s.held, k)
		}
	}
}

// flow runs the forward dataflow over fn's blocks to a fixed point and
// returns the state at the entry of each reachable block (nil otherwise).
func (c *checker) flow(fn *ssa.Function, init *state, must bool) []*state {
	in := make([]*state, len(fn.Blocks))
	out := make([]*state, len(fn.Blocks))
	if len(fn.Blocks) == 0 {
		return in
	}
	for changed, rounds := true, 0; changed && rounds < 50; rounds++ {
		changed = false
		for _, b := range fn.Blocks {
			var s *state
			if b.Index == 0 {
				s = init.clone()
			}
			for _, p := range b.Preds {
				if out[p.Index] == nil {
					continue
				}
				o := out[p.Index]
				if call := c.acquiredOn(p, b); call != nil {
					// The success edge of a TryLock or LockContext test.
					o = o.clone()
					ref := c.ref(call.Common())
					kind, _ := classify(call.Common())
					o.held[ref.key()] = holding{ref: ref, read: kind == callTryRLock, pos: call.Pos()}
					o.acquired[ref.key()] = true
				}
				if s == nil {
					s = o.clone()
				} else {
					s.merge(o, must)
				}
			}
			if s == nil {
				continue // not reached (yet), or the recover block
			}
			in[b.Index] = s.clone()
			for _, instr := range b.Instrs {
				c.transfer(fn, s, instr)
			}
			if out[b.Index] == nil || !out[b.Index].equal(s) {
				out[b.Index] = s
				changed = true
			}
		}
	}
	return in
}

// transfer applies one instruction to the lockset.
func (c *checker) transfer(fn *ssa.Function, s *state, instr ssa.Instruction) {
	switch in := instr.(type) {
	case *ssa.Call:
		kind, _ := classify(in.Common())
		switch kind {
		case callLock, callRLock:
			ref := c.ref(in.Common())
			s.held[ref.key()] = holding{ref: ref, read: kind == callRLock, pos: in.Pos()}
			s.acquired[ref.key()] = true
		case callUnlock, callRUnlock:
			s.release(c.ref(in.Common()))
		case callLockAll:
			for _, ref := range c.lockArgs(in.Common()) {
				s.held[ref.key()] = holding{ref: ref, pos: in.Pos()}
				s.acquired[ref.key()] = true
			}
		case callUnlockAll:
			refs := c.lockArgs(in.Common())
			if refs == nil {
				// UnlockAll(ms...): which locks is unknown; dropping all
				// keeps later blocking calls from false reports.
				clear(s.held)
			}
			for _, ref := range refs {
				s.release(ref)
			}
		case callOther:
			if sum, args := c.local(in.Common()); sum != nil {
				for _, a := range sum.releases {
					s.release(c.mapRef(a.ref, sum.fn, args))
				}
				for _, a := range sum.holds {
					ref := c.mapRef(a.ref, sum.fn, args)
					s.held[ref.key()] = holding{ref: ref, read: a.read, pos: in.Pos()}
					s.acquired[ref.key()] = true
				}
			}
		}
	case *ssa.Defer:
		kind, _ := classify(in.Common())
		switch kind {
		case callUnlock, callRUnlock:
			s.deferred[c.ref(in.Common()).key()] = true
		case callUnlockAll:
			refs := c.lockArgs(in.Common())
			if refs == nil {
				s.opaqueDefer = true
			}
			for _, ref := range refs {
				s.deferred[ref.key()] = true
			}
		case callOther:
			if sum, args := c.local(in.Common()); sum != nil {
				for _, a := range sum.releases {
					s.deferred[c.mapRef(a.ref, sum.fn, args).key()] = true
				}
			} else if _, known := calleeOf(in.Common()); !known || !in.Common().IsInvoke() && in.Common().StaticCallee() == nil {
				s.opaqueDefer = true
			}
		}
	}
}

// lockArgs resolves the locks passed to LockAll or UnlockAll as separate
// arguments (the compiler packs them into an array); nil for a slice
// passed on with ms....
func (c *checker) lockArgs(cc *ssa.CallCommon) []lockRef {
	if len(cc.Args) != 1 {
		return nil
	}
	sl, ok := cc.Args[0].(*ssa.Slice)
	if !ok {
		return nil
	}
	arr, ok := sl.X.(*ssa.Alloc)
	if !ok {
		return nil
	}
	var refs []lockRef
	for _, r := range *arr.Referrers() {
		ia, ok := r.(*ssa.IndexAddr)
		if !ok {
			continue
		}
		for _, r2 := range *ia.Referrers() {
			if st, ok := r2.(*ssa.Store); ok && st.Addr == ia {
				refs = append(refs, refOf(c.pkg, st.Val))
			}
		}
	}
	return refs
}

// acquiredOn returns the conditional acquisition (TryLock, LockContext)
// whose result the if ending p tests, if the edge p -> b is the one taken
// when it succeeded: "if mu.TryLock()", "if !mu.TryLock() { return }",
// "if err := mu.LockContext(ctx); err != nil { return err }". An
// acquisition whose result is not tested so does not count as held.
func (c *checker) acquiredOn(p, b *ssa.BasicBlock) *ssa.Call {
	if len(p.Instrs) == 0 || len(p.Succs) != 2 {
		return nil
	}
	ifi, ok := p.Instrs[len(p.Instrs)-1].(*ssa.If)
	if !ok {
		return nil
	}
	cond, success := ifi.Cond, true // success: the value on the success edge
	for {
		u, ok := cond.(*ssa.UnOp)
		if !ok || u.Op != token.NOT {
			break
		}
		cond, success = u.X, !success
	}
	var call *ssa.Call
	switch v := cond.(type) {
	case *ssa.Call:
		if kind, _ := classify(v.Common()); kind != callTryLock && kind != callTryRLock {
			return nil
		}
		call = v
	case *ssa.BinOp:
		// err != nil or err == nil, err being the call's result.
		x := v.X
		if k, ok := x.(*ssa.Const); ok && k.IsNil() {
			x = v.Y
		}
		call, _ = x.(*ssa.Call)
		if call == nil {
			return nil
		}
		if kind, _ := classify(call.Common()); kind != callLockErr {
			return nil
		}
		switch v.Op {
		case token.NEQ:
			success = !success // err != nil is true on failure
		case token.EQL:
		default:
			return nil
		}
	default:
		return nil
	}
	if onTrue := b == p.Succs[0]; onTrue != success {
		return nil
	}
	return call
}

// ref resolves the receiver of a Lock or Unlock call.
func (c *checker) ref(cc *ssa.CallCommon) lockRef {
	if cc.IsInvoke() {
		return refOf(c.pkg, cc.Value)
	}
	if len(cc.Args) == 0 {
		return lockRef{}
	}
	return refOf(c.pkg, cc.Args[0])
}
