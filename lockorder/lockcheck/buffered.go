package lockcheck

import (
	"go/constant"
	"go/token"
	"go/types"

	"golang.org/x/tools/go/ssa"
)

// Sends on buffered channels are not reported: a one-slot channel written
// once under a lock (a handoff, a close notification) is the common case,
// and reporting it would bury the unbuffered sends that deadlock. A channel
// counts as buffered when it is made here with a capacity that is not the
// constant 0, or when it is read from a slot (a struct field, or the
// elements of a slice or map field) that every store in the package fills
// with such a channel.

// slotState is what the stores into one slot put there.
type slotState struct{ buffered, other bool }

// noteChanStores records every channel stored into a slot.
func (c *checker) noteChanStores(funcs []*ssa.Function) {
	for _, fn := range funcs {
		for _, b := range fn.Blocks {
			for _, instr := range b.Instrs {
				switch in := instr.(type) {
				case *ssa.Store:
					if isChan(in.Val.Type()) {
						c.noteStore(c.storeSlot(in.Addr), in.Val)
					}
				case *ssa.MapUpdate:
					if isChan(in.Value.Type()) {
						if s := c.containerSlot(in.Map); s != "" {
							c.noteStore(s+"[]", in.Value)
						}
					}
				}
			}
		}
	}
}

func (c *checker) noteStore(slot string, v ssa.Value) {
	if slot == "" {
		return
	}
	st := c.slots[slot]
	if st == nil {
		st = &slotState{}
		c.slots[slot] = st
	}
	if k, ok := v.(*ssa.Const); ok && k.IsNil() {
		return // a reset: nothing is sent on nil
	}
	if madeBuffered(v, nil) {
		st.buffered = true
	} else {
		st.other = true
	}
}

// madeBuffered reports whether v is a channel made with a capacity other
// than the constant 0, on every path.
func madeBuffered(v ssa.Value, seen map[*ssa.Phi]bool) bool {
	switch v := v.(type) {
	case *ssa.MakeChan:
		k, ok := v.Size.(*ssa.Const)
		return !ok || k.Value == nil || constant.Sign(k.Value) != 0
	case *ssa.Phi:
		if seen[v] {
			return true
		}
		if seen == nil {
			seen = map[*ssa.Phi]bool{}
		}
		seen[v] = true
		for _, e := range v.Edges {
			if k, ok := e.(*ssa.Const); ok && k.IsNil() {
				continue
			}
			if !madeBuffered(e, seen) {
				return false
			}
		}
		return true
	case *ssa.ChangeType:
		return madeBuffered(v.X, seen)
	}
	return false
}

// storeSlot names the slot an address designates: "T.f" for a field,
// "T.f[]" for an element of a slice held in a field. An element of a
// local array that is appended to a field (t.q = append(t.q, ch)) is an
// element of that field.
func (c *checker) storeSlot(addr ssa.Value) string {
	switch a := addr.(type) {
	case *ssa.FieldAddr:
		return refOf(c.pkg, a).class
	case *ssa.Global:
		return "g:" + a.Pkg.Pkg.Path() + "." + a.Name()
	case *ssa.IndexAddr:
		if s := c.containerSlot(a.X); s != "" {
			return s + "[]"
		}
		if alloc, ok := a.X.(*ssa.Alloc); ok {
			for _, r := range *alloc.Referrers() {
				sl, ok := r.(*ssa.Slice)
				if !ok {
					continue
				}
				for _, r2 := range *sl.Referrers() {
					call, ok := r2.(*ssa.Call)
					if !ok || len(call.Call.Args) != 2 || call.Call.Args[1] != sl {
						continue
					}
					if b, ok := call.Call.Value.(*ssa.Builtin); ok && b.Name() == "append" {
						if s := c.containerSlot(call.Call.Args[0]); s != "" {
							return s + "[]"
						}
					}
				}
			}
		}
	}
	return ""
}

// containerSlot names the slot a slice, map or array value was read from.
func (c *checker) containerSlot(v ssa.Value) string {
	switch v := v.(type) {
	case *ssa.UnOp:
		if v.Op == token.MUL {
			return c.storeSlot(v.X)
		}
	case *ssa.Field:
		return refOf(c.pkg, v).class
	}
	return ""
}

// valueSlot names the slot a channel value was read from.
func (c *checker) valueSlot(v ssa.Value) string {
	switch v := v.(type) {
	case *ssa.UnOp:
		if v.Op == token.MUL {
			return c.storeSlot(v.X)
		}
	case *ssa.Field:
		return refOf(c.pkg, v).class
	case *ssa.Lookup:
		if s := c.containerSlot(v.X); s != "" {
			return s + "[]"
		}
	case *ssa.Index:
		if s := c.containerSlot(v.X); s != "" {
			return s + "[]"
		}
	case *ssa.Extract:
		// for _, ch := range t.m: Extract #2 of Next of Range of the map.
		if next, ok := v.Tuple.(*ssa.Next); ok && v.Index == 2 {
			if rg, ok := next.Iter.(*ssa.Range); ok {
				if s := c.containerSlot(rg.X); s != "" {
					return s + "[]"
				}
			}
		}
	}
	return ""
}

// buffered reports whether a send on ch cannot be the unbuffered
// rendezvous this analyzer looks for.
func (c *checker) buffered(ch ssa.Value) bool {
	if madeBuffered(ch, nil) {
		return true
	}
	if s := c.valueSlot(ch); s != "" {
		st := c.slots[s]
		return st != nil && st.buffered && !st.other
	}
	return false
}

func isChan(t types.Type) bool {
	_, ok := t.Underlying().(*types.Chan)
	return ok
}
