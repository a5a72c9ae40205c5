//go:build (lockorder || race) && !amd64 && !arm64

package lockorder

import "unsafe"

// getg has no implementation on this architecture: curGoid uses the
// runtime.Stack path.
func getg() unsafe.Pointer { return nil }
