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
	// ErrBlocking: a goroutine waits for an event (a WaitGroup, a Cond, a
	// channel value, a call's result, an annotated object) while holding
	// a lock that the goroutine which would end the wait acquires first.
	// Both block forever once they meet. The cycle runs through the
	// event: L -> event -> L.
	ErrBlocking = errors.New("lock held while blocking")
	// ErrExitedHolder: the lock being acquired is held by a goroutine that
	// has exited, so it will never be unlocked: a missing Unlock (an early
	// return, a panic without defer). Reported before the acquisition
	// blocks for good.
	ErrExitedHolder = errors.New("lock held by an exited goroutine")
	// ErrCopied: a mutex was copied after its first use; the copy is a
	// different lock that started in the state of the original (see
	// go vet's copylocks check). The copy gets its own class.
	ErrCopied = errors.New("mutex copied after first use")
)

// A Relation says what an Edge observed.
type Relation uint8

const (
	// Acquired: To (a lock) was acquired while From (a lock) was held.
	Acquired Relation = iota
	// WaitedHolding: a goroutine waited for To (an event) while holding
	// From (a lock).
	WaitedHolding
	// Unblocks: a goroutine acquired To (a lock), or waited for To (an
	// event), before it ended waits for From (an event): whoever waits
	// for From needs To to be free first.
	Unblocks
)

// An OrderError describes one lock-order violation. It is passed to the
// handler installed with SetHandler (by default it is the panic value).
type OrderError struct {
	// Kind is ErrInversion, ErrBlocking, ErrRank, ErrNesting,
	// ErrRecursive or ErrCopied; it is also what Unwrap returns, so
	// errors.Is(err, ErrInversion) works.
	Kind error
	// Edges is, for ErrInversion and ErrBlocking, the cycle in order:
	// Edges[i].To is Edges[i+1].From and the last edge is the operation
	// that closed the cycle. For ErrRank it holds one edge per held lock
	// that outranks the acquired one, preceded, when the graph knows one,
	// by the path that leads from the acquired class back to the last of
	// them (the whole cycle). For the other kinds it holds the single
	// offending acquisition: From is the held lock's class, To the
	// acquired one.
	Edges []Edge

	exited []int64 // for ErrExitedHolder: the exited holders
	// atBlock: reported at an operation about to block (an acquisition,
	// a wait), as opposed to an unblocking one.
	//lint:ignore U1000 set by checking builds only
	atBlock bool
}

// An Edge is one "held From while acquiring To" observation.
type Edge struct {
	From, To string // class names (of a lock or an event)
	// Relation says what was observed; Acquired for lock order.
	Relation Relation
	// Goroutine is the id of the goroutine that made the observation.
	Goroutine int64
	// Current reports whether this is the operation being checked now
	// (as opposed to an edge recorded earlier, when it was first seen).
	Current bool
	pcs     []uintptr

	//lint:ignore U1000 used by checking builds only
	fromClass, toClass *Class
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
	if e.Kind == ErrBlocking {
		b.WriteString("  (a goroutine blocks holding a lock that the goroutine which would unblock it needs first)\n")
	}
	for _, ed := range e.Edges {
		when := "first seen"
		if ed.Current {
			when = "this operation"
		}
		switch ed.Relation {
		case WaitedHolding:
			fmt.Fprintf(&b, "  goroutine %d waited for %s while holding %s (%s):\n", ed.Goroutine, ed.To, ed.From, when)
		case Unblocks:
			fmt.Fprintf(&b, "  goroutine %d needed %s before unblocking %s (%s):\n", ed.Goroutine, ed.To, ed.From, when)
		default:
			fmt.Fprintf(&b, "  goroutine %d acquired %s while holding %s (%s):\n", ed.Goroutine, ed.To, ed.From, when)
		}
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
	case ErrInversion, ErrBlocking:
		// Name the cycle from a lock a waiter holds, if there is one:
		// "L -> event -> L" reads as the story it tells.
		start := 0
		for i, ed := range e.Edges {
			if ed.Relation == WaitedHolding {
				start = i
				break
			}
		}
		names := make([]string, 0, len(e.Edges)+1)
		for i := range e.Edges {
			names = append(names, e.Edges[(start+i)%len(e.Edges)].From)
		}
		names = append(names, names[0])
		return e.Kind.Error() + ": " + strings.Join(names, " -> ")
	case ErrRank:
		msg := fmt.Sprintf("lock rank violation: acquiring %s while holding %s", last.To, last.From)
		if cyc := e.cycle(); len(cyc) > 1 {
			names := make([]string, 0, len(cyc)+1)
			for _, ed := range cyc {
				names = append(names, ed.From)
			}
			msg += " (cycle: " + strings.Join(append(names, last.To), " -> ") + ")"
		}
		return msg
	case ErrExitedHolder:
		return fmt.Sprintf("lock held by an exited goroutine: %s is held by goroutine(s) %v, which exited without unlocking it (a missing Unlock); this acquisition would block forever", last.To, e.exited)
	case ErrCopied:
		return fmt.Sprintf("mutex copied after first use: %s was copied; the copy is %s, a different lock (go vet's copylocks check finds the copy)", last.From, last.To)
	case ErrNesting:
		return fmt.Sprintf("same-class lock nesting: acquiring a second lock of class %s outside LockAll", last.To)
	case ErrRecursive:
		return fmt.Sprintf("recursive locking: %s is already held by this goroutine (a waiting writer or the lock itself deadlocks it)", last.To)
	}
	return e.Kind.Error()
}

// cycle returns the longest suffix of the edges that forms a cycle ending
// with the last edge, or nil.
func (e *OrderError) cycle() []Edge {
	n := len(e.Edges)
	for i := n - 1; i >= 0; i-- {
		if i < n-1 && e.Edges[i].To != e.Edges[i+1].From {
			return nil
		}
		if e.Edges[i].From == e.Edges[n-1].To {
			return e.Edges[i:]
		}
	}
	return nil
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
