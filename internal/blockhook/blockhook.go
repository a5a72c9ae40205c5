// Package blockhook lets garrison's packages tell a deadlock checker where
// goroutines block and where they unblock each other, without importing
// it: a channel send, a call waiting for its result, a wait for tasks.
//
// The calls cost nothing in production builds (empty, inlined functions).
// In checking builds (the build tag lockorder, or -race) they call the
// hooks that package lockorder registers from its init function; if
// lockorder is not linked in, each call is one load and a branch.
//
// The model: a goroutine that calls [Wait] on (obj, ev) may stay blocked
// until another goroutine calls [Unblock] on the same (obj, ev), or [End]
// after [Begin]. If the waiter holds a lock that the unblocking side
// acquires first, both can block forever: the checker reports that before
// it happens.
package blockhook

// An Event names what a goroutine waits for on an object; a channel has
// two (a value to arrive, and room or a receiver for a sent value).
type Event uint8

const (
	// Done: the work tracked by obj completes (a task, a call, a group).
	Done Event = iota
	// Value: a value is sent on obj; receivers wait for it, senders
	// unblock them.
	Value
	// Room: a value sent on obj is taken; senders wait for it, receivers
	// unblock them.
	Room
	// Signal: obj is signalled (a condition variable, an annotation).
	Signal
)

// String names the event in reports.
func (e Event) String() string {
	switch e {
	case Done:
		return "done"
	case Value:
		return "value"
	case Room:
		return "room"
	case Signal:
		return "signal"
	}
	return "event"
}
