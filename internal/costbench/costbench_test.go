package costbench

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParallelRunsEveryCall(t *testing.T) {
	var calls atomic.Int64
	ns := Parallel(100, func() uint64 { return uint64(calls.Add(1)) })
	require.Equal(t, int64(100*runtime.GOMAXPROCS(0)), calls.Load())
	require.Greater(t, ns, 0.0)
}

func TestMedian(t *testing.T) {
	require.Equal(t, 3.0, Median([]float64{5, 1, 3}))
	require.Equal(t, 4.0, Median([]float64{4, 1, 9, 2}))
}

// BenchmarkRatio: two contended adds against one.
func BenchmarkRatio(b *testing.B) {
	var x atomic.Uint64
	Ratio(b, 64, func() uint64 { return x.Add(1) }, func() uint64 { x.Add(1); return x.Add(1) }, "×one-add")
}
