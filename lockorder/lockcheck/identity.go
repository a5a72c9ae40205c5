package lockcheck

import (
	"fmt"
	"go/constant"
	"go/token"
	"go/types"

	"golang.org/x/tools/go/ssa"
)

// A lockRef names one mutex as a root value plus a selector path
// ("s" + ".mu"). Two acquisitions in one function with equal keys lock the
// same mutex; the class ("T.mu", "pkg.mu") names the role a mutex plays
// across functions and is what lock orders are recorded between.
type lockRef struct {
	root  ssa.Value // Parameter, FreeVar, Global, or another value by identity
	path  string    // ".mu", ".inner.mu", "[2]"
	class string    // "" when the role has no stable name (a local mutex)
	local bool      // class names a struct field or variable of the analyzed package
	desc  string    // what the user wrote: "s.mu"
}

// key is the identity of the mutex within one function.
func (r lockRef) key() string { return rootKey(r.root) + r.path }

func rootKey(v ssa.Value) string {
	switch v := v.(type) {
	case *ssa.Parameter:
		return "p:" + v.Name()
	case *ssa.FreeVar:
		return "fv:" + v.Name()
	case *ssa.Global:
		return "g:" + v.Pkg.Pkg.Path() + "." + v.Name()
	case guardedRoot:
		return "guarded"
	case opaqueRoot:
		return fmt.Sprintf("o:%p", v.Value)
	case nil:
		return "?"
	}
	return fmt.Sprintf("v%p", v)
}

// refOf resolves the address of a mutex (the receiver of Lock) to a lockRef.
// Loads are looked through, so a receiver variable captured by a closure
// (an Alloc read before Lock and again before Unlock) is one mutex: treating
// two loads as different mutexes would leave the lock "held" after its
// Unlock and report blocking calls that are fine.
//
// The class is the selector path from the outermost named struct (or
// package variable) the path starts at: c.in.Mutex and c.out.Mutex are
// Conn.in.Mutex and Conn.out.Mutex, two roles, even though both are the
// Mutex of a halfConn. The path stops at a pointer: the mu of the *conn
// that cr.conn points to is conn.mu, whoever points to the conn.
func refOf(pkg *types.Package, v ssa.Value) lockRef {
	var r lockRef
	deref := false // a load was looked through: outer fields hold a pointer
	field := func(x ssa.Value, i int) {
		f := fieldOf(x.Type(), i)
		r.path = "." + f.Name() + r.path
		r.desc = "." + f.Name() + r.desc
		if named, local := structName(pkg, x.Type()); named != "" && !deref {
			r.class, r.local = named+r.path, local
		}
	}
	for {
		switch x := v.(type) {
		case *ssa.FieldAddr:
			field(x.X, x.Field)
			v = x.X
			continue
		case *ssa.Field:
			field(x.X, x.Field)
			v = x.X
			continue
		case *ssa.IndexAddr:
			if c, ok := x.Index.(*ssa.Const); ok && c.Value != nil && c.Value.Kind() == constant.Int {
				r.path = "[" + c.Value.ExactString() + "]" + r.path
				r.desc = "[" + c.Value.ExactString() + "]" + r.desc
				v = x.X
				continue
			}
			// A variable index: this value by identity, in the class of the
			// element's role, so that an Unlock through another index
			// expression still releases it (see release).
			r.desc = describe(x.X) + "[…]" + r.desc
			r.root = x
			return r
		case *ssa.UnOp:
			if x.Op == token.MUL {
				deref = true
				v = x.X
				continue
			}
		case *ssa.ChangeType:
			v = x.X
			continue
		case *ssa.MakeInterface:
			v = x.X
			continue
		case *ssa.Global:
			if !deref {
				r.class = x.Pkg.Pkg.Name() + "." + x.Name() + r.path
				r.local = x.Pkg.Pkg == pkg
			}
		}
		r.root = v
		r.desc = describe(v) + r.desc
		return r
	}
}

// addrOf looks through the load of a pointer field (s.cond, s.wg of type
// *sync.Cond, *sync.WaitGroup), so that the variable's role ("S.cond")
// names the value it points to.
func addrOf(v ssa.Value) ssa.Value {
	if u, ok := v.(*ssa.UnOp); ok && u.Op == token.MUL {
		return u.X
	}
	return v
}

// describe is the source-level name of a root value, for messages.
func describe(v ssa.Value) string {
	switch v := v.(type) {
	case *ssa.Parameter, *ssa.FreeVar:
		return v.Name()
	case *ssa.Global:
		return v.Name()
	case *ssa.Alloc:
		if v.Comment != "" {
			return v.Comment
		}
	case *ssa.UnOp:
		if v.Op == token.MUL {
			return describe(v.X)
		}
	case *ssa.FieldAddr:
		return describe(v.X) + "." + fieldOf(v.X.Type(), v.Field).Name()
	case *ssa.Field:
		return describe(v.X) + "." + fieldOf(v.X.Type(), v.Field).Name()
	case *ssa.Call:
		if f := v.Call.StaticCallee(); f != nil {
			return f.Name() + "()"
		}
	}
	return "a mutex"
}

// fieldOf returns field i of the struct t is or points to. In generic
// code the struct may be a type parameter's core type; a shape the
// analysis does not expect yields a placeholder rather than a crash.
func fieldOf(t types.Type, i int) *types.Var {
	if p, ok := coreType(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	if s, ok := coreType(t).(*types.Struct); ok && i < s.NumFields() {
		return s.Field(i)
	}
	return types.NewVar(token.NoPos, nil, "?", types.Typ[types.Invalid])
}

// coreType is t's underlying type, or for a type parameter whose type set
// has one underlying type, that type.
func coreType(t types.Type) types.Type {
	t = types.Unalias(t)
	tp, ok := t.(*types.TypeParam)
	if !ok {
		return t.Underlying()
	}
	var core types.Type
	iface, _ := tp.Constraint().Underlying().(*types.Interface)
	if iface == nil {
		return nil
	}
	for i := 0; i < iface.NumEmbeddeds(); i++ {
		u, ok := iface.EmbeddedType(i).(*types.Union)
		if !ok {
			return nil
		}
		for j := 0; j < u.Len(); j++ {
			ut := u.Term(j).Type().Underlying()
			if core != nil && !types.Identical(core, ut) {
				return nil
			}
			core = ut
		}
	}
	return core
}

// structName names the struct type a field selection is made on, qualified
// by its package unless it is pkg, and reports whether it is declared in pkg.
func structName(pkg *types.Package, t types.Type) (string, bool) {
	if p, ok := coreType(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return "", false
	}
	obj := n.Origin().Obj()
	if obj.Pkg() == nil {
		return obj.Name(), false
	}
	if obj.Pkg() == pkg {
		return obj.Name(), true
	}
	return obj.Pkg().Name() + "." + obj.Name(), false
}
