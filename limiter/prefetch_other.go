//go:build !amd64 || purego

package limiter

// prefetchForWrite does nothing here (see prefetch_amd64.go).
func prefetchForWrite(*slot) {}
