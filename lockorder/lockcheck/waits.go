package lockcheck

import (
	"go/token"
	"go/types"

	"golang.org/x/tools/go/ssa"
)

// onceSite is a Once.Do made while locks were held.
type onceSite struct {
	once string
	held []holding
	pos  token.Pos
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
