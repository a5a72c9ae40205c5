//go:build !race

package siege

const raceEnabled = false
