//go:build !lockorder && !race

package blockhook

// Wait: the calling goroutine may now block until (obj, ev) is
// unblocked. Empty in production builds.
func Wait(obj any, ev Event) {}

// Unblock: the calling goroutine ends waits on (obj, ev). Empty in
// production builds.
func Unblock(obj any, ev Event) {}

// Begin: the calling goroutine starts work whose end ([End]) unblocks
// (obj, ev). Empty in production builds.
func Begin(obj any, ev Event) {}

// End: the work begun with [Begin] is over, and unblocks (obj, ev). Empty
// in production builds.
func End(obj any, ev Event) {}
