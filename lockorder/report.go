package lockorder

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// The kinds of violation an OrderError reports; test them with errors.Is.
var (
	// ErrInversion: the acquisition closes a cycle in the lock-order graph
	// (A -> B here, B -> A there, or any longer cycle). Two goroutines
	// following the two orders at the same time deadlock.
	ErrInversion = errors.New("lock order inversion")
	// ErrRank: a ranked lock was acquired while a lock of equal or higher
	// rank was held.
	ErrRank = errors.New("lock rank violation")
	// ErrNesting: a second lock of the same class was acquired outside
	// LockAll. Two goroutines nesting the same pair in opposite orders
	// deadlock; LockAll takes such sets in a global order.
	ErrNesting = errors.New("same-class lock nesting")
	// ErrRecursive: the goroutine acquires a lock it already holds. For
	// Lock this is a self-deadlock; for RLock it deadlocks as soon as a
	// writer is waiting, because a pending writer blocks new readers.
	ErrRecursive = errors.New("recursive locking")
)

// An OrderError describes one lock-order violation. It is passed to the
// handler installed with SetHandler (by default it is the panic value).
type OrderError struct {
	// Kind is ErrInversion, ErrRank, ErrNesting or ErrRecursive; it is
	// also what Unwrap returns, so errors.Is(err, ErrInversion) works.
	Kind error
	// Edges is, for ErrInversion, the cycle in order: Edges[i].To is
	// Edges[i+1].From and the last edge is the acquisition that closed the
	// cycle. For the other kinds it holds the single offending
	// acquisition: From is the held lock's class, To the acquired one.
	Edges []Edge
}

// An Edge is one "held From while acquiring To" observation.
type Edge struct {
	From, To string // class names
	// Goroutine is the id of the goroutine that made the acquisition.
	Goroutine int64
	// Current reports whether this is the acquisition being checked now
	// (as opposed to an edge recorded earlier, when it was first seen).
	Current bool
	pcs     []uintptr
}

// Stack returns the acquiring goroutine's stack at the acquisition, one
// "file:line function" frame per line, innermost first, without this
// package's frames.
func (e Edge) Stack() string {
	var b strings.Builder
	writeStack(&b, e.pcs, "")
	return b.String()
}

// Unwrap returns e.Kind.
func (e *OrderError) Unwrap() error { return e.Kind }

// Error returns a multi-line report: a headline naming the classes, then
// every edge with its goroutine and acquiring stack.
func (e *OrderError) Error() string {
	var b strings.Builder
	b.WriteString(e.headline())
	b.WriteByte('\n')
	for _, ed := range e.Edges {
		when := "first seen"
		if ed.Current {
			when = "this acquisition"
		}
		fmt.Fprintf(&b, "  goroutine %d acquired %s while holding %s (%s):\n", ed.Goroutine, ed.To, ed.From, when)
		writeStack(&b, ed.pcs, "        ")
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *OrderError) headline() string {
	if len(e.Edges) == 0 {
		return e.Kind.Error()
	}
	last := e.Edges[len(e.Edges)-1]
	switch e.Kind {
	case ErrInversion:
		names := make([]string, 0, len(e.Edges)+1)
		for _, ed := range e.Edges {
			names = append(names, ed.From)
		}
		names = append(names, e.Edges[0].From)
		return "lock order inversion: " + strings.Join(names, " -> ")
	case ErrRank:
		return fmt.Sprintf("lock rank violation: acquiring %s while holding %s", last.To, last.From)
	case ErrNesting:
		return fmt.Sprintf("same-class lock nesting: acquiring a second lock of class %s outside LockAll", last.To)
	case ErrRecursive:
		return fmt.Sprintf("recursive locking: %s is already held by this goroutine (a waiting writer or the lock itself deadlocks it)", last.To)
	}
	return e.Kind.Error()
}

// pkgPrefix identifies this package's own frames, which are left out of
// stacks. Frames from _test.go files are kept: they are the user's code.
const pkgPrefix = "github.com/garrison-go/garrison/lockorder."

func internalFrame(f runtime.Frame) bool {
	return strings.HasPrefix(f.Function, pkgPrefix) && !strings.HasSuffix(f.File, "_test.go")
}

func writeStack(b *strings.Builder, pcs []uintptr, indent string) {
	if len(pcs) == 0 {
		b.WriteString(indent + "(no stack recorded)\n")
		return
	}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function == "runtime.goexit" {
			break
		}
		if !internalFrame(f) {
			fmt.Fprintf(b, "%s%s:%d %s\n", indent, f.File, f.Line, f.Function)
		}
		if !more {
			break
		}
	}
}
