package lockorder

// CheckerStats is a snapshot of the order checker's state.
type CheckerStats struct {
	Enabled bool // checking is compiled in
	// FastGoroutineID reports whether goroutine ids are read directly (the
	// verified fast path) rather than parsed from runtime.Stack.
	FastGoroutineID bool
	Edges           int    // known "held A while acquiring B" class pairs
	InstanceClasses int64  // live per-instance classes (mutexes without a Class)
	Reports         uint64 // violations delivered to the handler
}
