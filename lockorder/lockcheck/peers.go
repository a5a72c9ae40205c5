package lockcheck

import (
	"fmt"
	"go/token"
	"go/types"
	"slices"

	"golang.org/x/tools/go/ssa"
)

// A report says which lock is held across which wait; the reader then
// asks "does the goroutine that ends the wait need that lock?". Where the
// package answers it, the report says so: the channel's other side (or the
// WaitGroup's Done) runs in a function that takes a lock of the same role.

// peerOp is one operation that can end a wait: a receive ends a send's
// wait, a send or close a receive's, a Done a Wait's, a Signal or
// Broadcast a Cond.Wait's.
type peerOp struct {
	what string
	pos  token.Pos
	fn   *ssa.Function
}

// notePeers records, per channel slot or WaitGroup role, the operations
// that end waits on it. Keys: "send:"+slot, "recv:"+slot, "done:"+role
// (WaitGroup), "signal:"+role (Cond).
func (c *checker) notePeers(funcs []*ssa.Function) {
	add := func(key string, op peerOp) {
		c.peers[key] = append(c.peers[key], op)
	}
	for _, fn := range funcs {
		for _, b := range fn.Blocks {
			for _, instr := range b.Instrs {
				switch in := instr.(type) {
				case *ssa.Send:
					if s := c.valueSlot(in.Chan); s != "" {
						add("recv:"+s, peerOp{"send", in.Pos(), fn})
					}
				case *ssa.UnOp:
					if in.Op == token.ARROW {
						if s := c.valueSlot(in.X); s != "" {
							add("send:"+s, peerOp{"receive", in.Pos(), fn})
						}
					}
				case *ssa.Select:
					for _, st := range in.States {
						if s := c.valueSlot(st.Chan); s != "" {
							if st.Dir == types.SendOnly {
								add("recv:"+s, peerOp{"send", st.Pos, fn})
							} else {
								add("send:"+s, peerOp{"receive", st.Pos, fn})
							}
						}
					}
				case ssa.CallInstruction: // a call, or a deferred wg.Done()
					cc := in.Common()
					ce, ok := calleeOf(cc)
					if !ok || len(cc.Args) == 0 {
						continue
					}
					switch {
					case ce.name == "close" && ce.pkg == "":
						if s := c.valueSlot(cc.Args[0]); s != "" {
							add("recv:"+s, peerOp{"close", in.Pos(), fn})
						}
					case ce.recv == "WaitGroup" && (ce.name == "Done" || ce.name == "Add") &&
						(ce.pkg == "sync" || ce.pkg == garrison+"lockorder"):
						if r := refOf(c.pkg, addrOf(cc.Args[0])); r.class != "" {
							add("done:"+r.class, peerOp{"Done", in.Pos(), fn})
						}
					case ce.recv == "Cond" && (ce.name == "Signal" || ce.name == "Broadcast") &&
						(ce.pkg == "sync" || ce.pkg == garrison+"lockorder"):
						if r := refOf(c.pkg, addrOf(cc.Args[0])); r.class != "" {
							add("signal:"+r.class, peerOp{ce.name, in.Pos(), fn})
						}
					}
				}
			}
		}
	}
}

// peerKey names the peers that can end the wait instr makes, if known.
func (c *checker) peerKey(instr ssa.Instruction) []string {
	switch in := instr.(type) {
	case *ssa.Send:
		if s := c.valueSlot(in.Chan); s != "" {
			return []string{"send:" + s}
		}
	case *ssa.UnOp:
		if s := c.valueSlot(in.X); s != "" {
			return []string{"recv:" + s}
		}
	case *ssa.Select:
		var keys []string
		for _, st := range in.States {
			if s := c.valueSlot(st.Chan); s != "" {
				if st.Dir == types.SendOnly {
					keys = append(keys, "send:"+s)
				} else {
					keys = append(keys, "recv:"+s)
				}
			}
		}
		return keys
	case *ssa.Call:
		ce, ok := calleeOf(in.Common())
		if !ok || ce.name != "Wait" || len(in.Call.Args) == 0 {
			return nil
		}
		r := refOf(c.pkg, addrOf(in.Call.Args[0]))
		switch {
		case r.class == "":
		case ce.recv == "WaitGroup":
			return []string{"done:" + r.class}
		case ce.recv == "Cond":
			return []string{"signal:" + r.class}
		}
	}
	return nil
}

// peerNeeds returns ", and the receive at line 30 (in watcher.consume)
// takes watcher.mu" when an operation that can end instr's wait runs in a
// function that takes the role of a held lock; "" otherwise.
func (c *checker) peerNeeds(instr ssa.Instruction, held []holding) string {
	for _, key := range c.peerKey(instr) {
		ops := slices.Clone(c.peers[key])
		slices.SortFunc(ops, func(a, b peerOp) int { return int(a.pos - b.pos) })
		for _, op := range ops {
			sum := c.sums[op.fn]
			if sum == nil || op.fn == instr.Parent() {
				// The same function on another goroutine: a channel used
				// as a token under the lock (take, use, give back) pairs
				// with itself and never waits.
				continue
			}
			for _, h := range held {
				if h.ref.class == "" {
					continue
				}
				for _, a := range sum.acquires {
					if a.ref.class == h.ref.class {
						return fmt.Sprintf("; the %s at %s (in %s) takes %s",
							op.what, c.where(op.pos, instr.Pos()), calleeName(op.fn), h.ref.class)
					}
				}
			}
		}
	}
	return ""
}
