//go:build race

package limiter

// raceEnabled scales the heaviest tests down under the race detector,
// which slows them tenfold; .ci/checks/limiter.sh runs them in full without it.
const raceEnabled = true
