//go:build !lockorder && !race

package lockorder

func blocking(any)    {}
func unblocking(any)  {}
func willUnblock(any) {}
