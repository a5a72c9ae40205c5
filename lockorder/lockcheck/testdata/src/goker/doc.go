// Package goker holds kernels modelled on the mechanisms of real-world
// blocking bugs (the GoKer set of GoBench): each file is one bug, reduced
// to the goroutines and locks that deadlock, with the report expected
// where the analyzer can see it before the hang.
package goker
