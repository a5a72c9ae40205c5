//go:build !purego

package limiter

import (
	"bytes"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCPUIDAgreesWithTheKernel checks cpuid against what Linux read from
// the same CPU: the vendor string (leaf 0, in EBX, EDX, ECX order) and the
// PREFETCHW flag ("3dnowprefetch" in /proc/cpuinfo), which decides whether
// prefetchForWrite runs the instruction.
func TestCPUIDAgreesWithTheKernel(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/cpuinfo")
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	require.NoError(t, err)
	field := func(name string) string {
		for line := range strings.Lines(string(info)) {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == name {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("no %q in /proc/cpuinfo", name)
		return ""
	}
	_, ebx, ecx, edx := cpuid(0)
	var vendor bytes.Buffer
	for _, r := range []uint32{ebx, edx, ecx} {
		vendor.Write([]byte{byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24)})
	}
	require.Equal(t, field("vendor_id"), strings.TrimSpace(vendor.String()))
	flags := strings.Fields(field("flags"))
	require.Equal(t, slices.Contains(flags, "3dnowprefetch"), hasPrefetchW, "flags: %v", flags)
}
