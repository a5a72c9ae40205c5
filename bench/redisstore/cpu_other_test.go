//go:build !unix

package redisstorebench

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
