//go:build !purego

package limiter

// hasPrefetchW reports whether the CPU implements PREFETCHW (CPUID
// 8000_0001h, ECX bit 8: AMD since the K6-2, Intel since Broadwell).
var hasPrefetchW = func() bool {
	if maxExt, _, _, _ := cpuid(0x8000_0000); maxExt < 0x8000_0001 {
		return false
	}
	_, _, ecx, _ := cpuid(0x8000_0001)
	return ecx&(1<<8) != 0
}()

// prefetchForWrite asks the CPU to fetch the cache line holding p for
// writing (exclusive, as a store would) without waiting for it. It is a
// hint: it changes no memory and never faults.
func prefetchForWrite(p *slot) {
	if hasPrefetchW {
		prefetchw(p)
	}
}

// prefetchw is PREFETCHW, which must only run where hasPrefetchW.
//
//go:noescape
func prefetchw(p *slot)

func cpuid(leaf uint32) (eax, ebx, ecx, edx uint32)
