//go:build !unix

package limiter

// noFileFinding: there is no RLIMIT_NOFILE outside Unix.
func noFileFinding(int) []Finding { return nil }
