//go:build !linux

package limiter

// preflight has no /proc to read outside Linux.
func preflight(maxConns int) []Finding { return noFileFinding(maxConns) }
