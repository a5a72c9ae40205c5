//go:build race

package siege

// raceEnabled is true in a -race build: the race detector limits live
// goroutines to 8,128, so the botnet scenarios scale down.
const raceEnabled = true
