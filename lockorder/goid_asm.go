//go:build (lockorder || race) && (amd64 || arm64)

package lockorder

import "unsafe"

// getg returns the current goroutine's runtime descriptor (goid_*.s). The
// pointer is only read at offsets verified by findGoidOffset.
func getg() unsafe.Pointer
