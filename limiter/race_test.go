//go:build race

package limiter

// raceEnabled: the race detector slows every goroutine several times, so
// load tests scale their load down.
const raceEnabled = true
