//go:build !unix

package siege

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
