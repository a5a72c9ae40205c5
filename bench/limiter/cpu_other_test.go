//go:build !unix

package limiterbench

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
