//go:build lockorder || race

package blockhook

// Hooks is what a checker registers. Each function receives the object
// (a pointer) and the event. End is Unblock: it also ends what Begin
// started.
type Hooks struct {
	Wait, Unblock, Begin func(obj any, ev Event)
}

// hooks is written once, by Register from an init function, which happens
// before any goroutine of the program can call the hooks: no
// synchronization is needed to read it.
var hooks *Hooks

// Register installs h. It must be called from an init function.
func Register(h *Hooks) { hooks = h }

// Wait: the calling goroutine may now block until (obj, ev) is
// unblocked. Call it just before the blocking operation.
func Wait(obj any, ev Event) {
	if h := hooks; h != nil {
		h.Wait(obj, ev)
	}
}

// Unblock: the calling goroutine ends waits on (obj, ev) (it sends,
// closes, signals or completes). Call it just before the operation.
func Unblock(obj any, ev Event) {
	if h := hooks; h != nil {
		h.Unblock(obj, ev)
	}
}

// Begin: the calling goroutine starts work whose end, [End], unblocks
// (obj, ev): every lock it acquires until then is needed to unblock it.
func Begin(obj any, ev Event) {
	if h := hooks; h != nil {
		h.Begin(obj, ev)
	}
}

// End: the work begun with [Begin] is over and unblocks (obj, ev).
func End(obj any, ev Event) {
	if h := hooks; h != nil {
		h.Unblock(obj, ev)
	}
}
