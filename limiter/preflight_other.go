//go:build !linux

package limiter

// preflight has no /proc to read outside Linux.
func preflight() []Finding { return noFileFinding() }
