package lockcheck

import (
	"go/token"
	"go/types"

	"golang.org/x/tools/go/ssa"
)

// checkEscapes reports, for every changuard callback passed in fn, the
// places where the pointer lent to the callback (or a pointer, map or
// slice reached through it) outlives the call: the Guarded's lock, or the
// Owner's goroutine, no longer protects what it points to.
func (c *checker) checkEscapes(fn *ssa.Function) {
	for _, b := range fn.Blocks {
		for _, instr := range b.Instrs {
			call, ok := instr.(*ssa.Call)
			if !ok {
				continue
			}
			ce, ok := calleeOf(call.Common())
			if !ok || ce.pkg != garrison+"changuard" {
				continue
			}
			qual := ce.name
			if ce.recv != "" {
				qual = ce.recv + "." + ce.name
			}
			i, ok := guardedCallbacks[qual]
			if !ok || i >= len(call.Call.Args) {
				continue
			}
			var cb *ssa.Function
			switch f := call.Call.Args[i].(type) {
			case *ssa.MakeClosure:
				cb, _ = f.Fn.(*ssa.Function)
			case *ssa.Function:
				cb = f
			}
			if cb == nil || len(cb.Params) == 0 || len(cb.Blocks) == 0 {
				continue
			}
			c.escapes(cb, "changuard."+qual)
		}
	}
}

// escapes reports the sinks of cb's first parameter.
func (c *checker) escapes(cb *ssa.Function, api string) {
	p := cb.Params[0]
	if _, ok := coreType(p.Type()).(*types.Pointer); !ok {
		return
	}
	tainted := map[ssa.Value]bool{p: true}
	// Propagate to a fixed point: a phi may precede its tainted operand.
	for changed := true; changed; {
		changed = false
		for _, b := range cb.Blocks {
			for _, instr := range b.Instrs {
				// A local variable of the callback holding the pointer
				// (one a closure captures) carries it on.
				if st, ok := instr.(*ssa.Store); ok && tainted[st.Val] {
					if a, ok := st.Addr.(*ssa.Alloc); ok && a.Parent() == cb && !tainted[a] {
						tainted[a] = true
						changed = true
					}
				}
				v, ok := instr.(ssa.Value)
				if !ok || tainted[v] || !derived(v, tainted) {
					continue
				}
				tainted[v] = true
				changed = true
			}
		}
	}
	for _, b := range cb.Blocks {
		for _, instr := range b.Instrs {
			switch in := instr.(type) {
			case *ssa.Store:
				if tainted[in.Val] && !inside(in.Addr, tainted, cb) {
					c.report(in.Pos(), "pointer lent to the %s callback escapes it: %s; use it only inside the callback, or copy the value out",
						api, storeSink(in.Addr))
				}
			case *ssa.Send:
				if tainted[in.X] {
					c.report(in.Pos(), "pointer lent to the %s callback escapes it: sent on a channel; send a copy", api)
				}
			case *ssa.MapUpdate:
				if (tainted[in.Value] || tainted[in.Key]) && !inside(in.Map, tainted, cb) {
					c.report(in.Pos(), "pointer lent to the %s callback escapes it: stored in a map; store a copy", api)
				}
			case *ssa.Return:
				for _, r := range in.Results {
					if tainted[r] {
						c.report(returnPos(in, cb), "pointer lent to the %s callback escapes it: returned; return a copy", api)
					}
				}
			case *ssa.Go:
				escaped := tainted[in.Call.Value]
				for _, a := range in.Call.Args {
					escaped = escaped || tainted[a]
				}
				if escaped {
					c.report(in.Pos(), "pointer lent to the %s callback escapes it: used by a goroutine that outlives the callback", api)
				}
			}
		}
	}
}

// derived reports whether v points into (or is) a tainted value.
func derived(v ssa.Value, tainted map[ssa.Value]bool) bool {
	switch v := v.(type) {
	case *ssa.FieldAddr:
		return tainted[v.X]
	case *ssa.IndexAddr:
		return tainted[v.X]
	case *ssa.Slice:
		return tainted[v.X]
	case *ssa.ChangeType:
		return tainted[v.X]
	case *ssa.Convert:
		return tainted[v.X]
	case *ssa.MakeInterface:
		return tainted[v.X]
	case *ssa.ChangeInterface:
		return tainted[v.X]
	case *ssa.TypeAssert:
		return tainted[v.X]
	case *ssa.UnOp:
		// Loading a pointer, map or slice out of the guarded value yields
		// state the guard protects; loading a number copies it.
		return v.Op == token.MUL && tainted[v.X] && reference(v.Type())
	case *ssa.Field:
		return tainted[v.X] && reference(v.Type())
	case *ssa.Index:
		return tainted[v.X] && reference(v.Type())
	case *ssa.Lookup:
		return tainted[v.X] && reference(v.Type())
	case *ssa.Phi:
		for _, e := range v.Edges {
			if tainted[e] {
				return true
			}
		}
	case *ssa.MakeClosure:
		for _, b := range v.Bindings {
			if tainted[b] {
				return true
			}
		}
	case *ssa.Call:
		// append(s, ...) may return s's array.
		if b, ok := v.Call.Value.(*ssa.Builtin); ok && b.Name() == "append" && len(v.Call.Args) > 0 {
			return tainted[v.Call.Args[0]]
		}
	}
	return false
}

func reference(t types.Type) bool {
	switch t.Underlying().(type) {
	case *types.Pointer, *types.Map, *types.Slice, *types.Chan, *types.Interface:
		return true
	}
	return false
}

// inside reports whether addr is storage owned by the guarded value or
// local to the callback: storing there does not outlive the call.
func inside(addr ssa.Value, tainted map[ssa.Value]bool, cb *ssa.Function) bool {
	for {
		if tainted[addr] {
			return true
		}
		switch a := addr.(type) {
		case *ssa.FieldAddr:
			addr = a.X
		case *ssa.IndexAddr:
			addr = a.X
		case *ssa.Alloc:
			return a.Parent() == cb
		default:
			return false
		}
	}
}

func storeSink(addr ssa.Value) string {
	for {
		switch a := addr.(type) {
		case *ssa.FieldAddr:
			return "stored in field " + fieldOf(a.X.Type(), a.Field).Name() + " of a value outside it"
		case *ssa.IndexAddr:
			return "stored in an element of a slice or array outside it"
		case *ssa.Global:
			return "stored in package variable " + a.Name()
		case *ssa.FreeVar:
			return "assigned to " + a.Name() + ", a variable declared outside the callback"
		case *ssa.UnOp:
			addr = a.X
			continue
		}
		return "stored through a pointer"
	}
}

// returnPos finds a usable position for a return: implicit returns have none.
func returnPos(r *ssa.Return, cb *ssa.Function) token.Pos {
	if r.Pos().IsValid() {
		return r.Pos()
	}
	return cb.Pos()
}
