// Package spawnbench compares garrison's spawn package with raw goroutines
// and the usual bounded pools, side by side in one run.
//
// Each benchmark iteration runs one whole batch of n tasks and waits for all
// of them, so ns/op is per batch; ns/task, allocs/task and peak-goroutines
// are reported with b.ReportMetric. Pools are built once per sub-benchmark
// (outside the timer) and reused across iterations, except conc and
// errgroup, whose Wait ends a pool and which are cheap to build.
package spawnbench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
	"github.com/sourcegraph/conc/pool"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/garrison-go/garrison/spawn"
)

// sink keeps the tiny task's work observable so the compiler cannot drop it.
var sink atomic.Uint64

// tiny is a CPU task of a few tens of nanoseconds.
func tiny() {
	x := uint64(88172645463325252)
	for range 32 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	if x == 0 {
		sink.Add(1)
	}
}

// sleepy is a task that blocks 10µs, like a short I/O wait.
func sleepy() { time.Sleep(10 * time.Microsecond) }

// impl runs one batch of n calls of task with at most limit running at once
// (raw ignores limit), and returns when all have finished. setup is called
// once per sub-benchmark and returns the batch runner and a cleanup.
type impl struct {
	name  string
	setup func(b *testing.B, limit int, task func()) (batch func(n int), cleanup func())
	// tinyOnly keeps an implementation out of BenchmarkSleep, whose
	// batches take seconds each, to bound the CI run: dispatch cost is
	// what the tiny task measures.
	tinyOnly bool
}

var impls = []impl{
	{name: "raw", setup: setupRaw},
	{name: "errgroup", setup: setupErrgroup},
	{name: "semaphore", setup: setupSemaphore},
	{name: "ants", setup: setupAnts},
	{name: "pond", setup: setupPond},
	{name: "conc", setup: setupConc},
	{name: "conc-errors", setup: setupConcErrors, tinyOnly: true},
	{name: "garrison-Go", setup: setupGarrisonGo},
	{name: "garrison-Go-values", setup: setupGarrisonGoValues, tinyOnly: true},
	{name: "garrison-Group", setup: setupGarrisonGroup, tinyOnly: true},
	{name: "garrison-TryGo", setup: setupGarrisonTryGo},
	{name: "garrison-Submit", setup: setupGarrisonSubmit},
}

func setupRaw(_ *testing.B, _ int, task func()) (func(int), func()) {
	return func(n int) {
		var wg sync.WaitGroup
		wg.Add(n)
		for range n {
			go func() {
				task()
				wg.Done()
			}()
		}
		wg.Wait()
	}, func() {}
}

func setupErrgroup(_ *testing.B, limit int, task func()) (func(int), func()) {
	f := func() error { task(); return nil }
	return func(n int) {
		var g errgroup.Group
		g.SetLimit(limit)
		for range n {
			g.Go(f)
		}
		_ = g.Wait()
	}, func() {}
}

func setupSemaphore(_ *testing.B, limit int, task func()) (func(int), func()) {
	sem := semaphore.NewWeighted(int64(limit))
	ctx := context.Background()
	f := func() {
		task()
		sem.Release(1)
	}
	return func(n int) {
		for range n {
			_ = sem.Acquire(ctx, 1)
			go f()
		}
		_ = sem.Acquire(ctx, int64(limit))
		sem.Release(int64(limit))
	}, func() {}
}

func setupAnts(b *testing.B, limit int, task func()) (func(int), func()) {
	p, err := ants.NewPool(limit)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	f := func() {
		task()
		wg.Done()
	}
	return func(n int) {
		wg.Add(n)
		for range n {
			if err := p.Submit(f); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
	}, p.Release
}

func setupPond(b *testing.B, limit int, task func()) (func(int), func()) {
	p := pond.NewPool(limit)
	var wg sync.WaitGroup
	f := func() {
		task()
		wg.Done()
	}
	return func(n int) {
		wg.Add(n)
		for range n {
			if err := p.Go(f); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
	}, p.StopAndWait
}

func setupConc(_ *testing.B, limit int, task func()) (func(int), func()) {
	return func(n int) {
		p := pool.New().WithMaxGoroutines(limit)
		for range n {
			p.Go(task)
		}
		p.Wait()
	}, func() {}
}

func newSpawner(b *testing.B, limit int) *spawn.Spawner {
	s, err := spawn.New(spawn.WithMaxConcurrent(limit))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func shutdown(b *testing.B, s *spawn.Spawner) func() {
	return func() {
		if err := s.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func setupGarrisonGo(b *testing.B, limit int, task func()) (func(int), func()) {
	s := newSpawner(b, limit)
	ctx := context.Background()
	f := func(context.Context) error { task(); return nil }
	return func(n int) {
		for range n {
			if err := s.Go(ctx, f); err != nil {
				b.Fatal(err)
			}
		}
		_ = s.Wait(ctx)
	}, shutdown(b, s)
}

// setupGarrisonTryGo retries a rejected TryGo after yielding: a service
// would shed the task instead, but the batch must run all n.
func setupGarrisonTryGo(b *testing.B, limit int, task func()) (func(int), func()) {
	s := newSpawner(b, limit)
	ctx := context.Background()
	f := func(context.Context) error { task(); return nil }
	return func(n int) {
		for range n {
			for s.TryGo(f) != nil {
				runtime.Gosched()
			}
		}
		_ = s.Wait(ctx)
	}, shutdown(b, s)
}

// setupGarrisonSubmit drops the handles: the batch waits with Spawner.Wait,
// as the other implementations do with their group or WaitGroup.
func setupGarrisonSubmit(b *testing.B, limit int, task func()) (func(int), func()) {
	s := newSpawner(b, limit)
	ctx := context.Background()
	f := func(context.Context) (struct{}, error) { task(); return struct{}{}, nil }
	return func(n int) {
		for range n {
			if _, err := spawn.Submit(ctx, s, f); err != nil {
				b.Fatal(err)
			}
		}
		_ = s.Wait(ctx)
	}, shutdown(b, s)
}

// cpuTime is the CPU time (user and system) the process has used so far.
// On a machine shared with other work, CPU time per task is a steadier
// measure of a pool's cost than wall time, which includes waiting for a
// core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakSampler records the most goroutines seen while a batch runs.
type peakSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startPeakSampler() *peakSampler {
	p := &peakSampler{stop: make(chan struct{}), done: make(chan struct{})}
	p.observe()
	go func() {
		defer close(p.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.observe()
			}
		}
	}()
	return p
}

func (p *peakSampler) observe() {
	n := int64(runtime.NumGoroutine())
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			return
		}
	}
}

func (p *peakSampler) finish() int64 {
	close(p.stop)
	<-p.done
	return p.peak.Load()
}

type size struct {
	name string
	n    int
}

func runGroup(b *testing.B, task func(), caps []int, sizes []size, tiny bool) {
	for _, limit := range caps {
		capName := fmt.Sprintf("cap=%d", limit)
		if limit == runtime.GOMAXPROCS(0) {
			capName = "cap=GOMAXPROCS"
		}
		for _, sz := range sizes {
			for _, im := range impls {
				if im.tinyOnly && !tiny {
					continue
				}
				b.Run(capName+"/n="+sz.name+"/"+im.name, func(b *testing.B) {
					runBatches(b, im, limit, sz.n, task)
				})
			}
		}
	}
}

func runBatches(b *testing.B, im impl, limit, n int, task func()) {
	batch, cleanup := im.setup(b, limit, task)
	defer cleanup()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := startPeakSampler()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		batch(n)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	peakG := peak.finish()
	runtime.ReadMemStats(&after)
	tasks := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/tasks, "ns/task")
	b.ReportMetric(float64(cpu.Nanoseconds())/tasks, "cpu-ns/task")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/tasks, "allocs/task")
	b.ReportMetric(float64(peakG), "peak-goroutines")
}

// BenchmarkTiny runs a CPU task of a few tens of nanoseconds: the cost of
// dispatch dominates.
func BenchmarkTiny(b *testing.B) {
	runGroup(b, tiny, []int{1000, runtime.GOMAXPROCS(0)}, []size{{"1e5", 1e5}, {"1e6", 1e6}}, true)
}

// BenchmarkSleep runs a task that sleeps 10µs. With cap GOMAXPROCS the
// batch is bound by the sleeps, which on Linux last far longer than 10µs
// when few goroutines are runnable (measured 100-350µs per task), so that
// cap uses n=1e3 instead of 1e5 and 1e6 to keep the one-iteration CI run
// short.
func BenchmarkSleep(b *testing.B) {
	runGroup(b, sleepy, []int{1000}, []size{{"1e5", 1e5}, {"1e6", 1e6}}, false)
	runGroup(b, sleepy, []int{runtime.GOMAXPROCS(0)}, []size{{"1e3", 1e3}}, false)
}

// BenchmarkFlood submits 1e6 tasks with TryGo to a spawner whose running
// slots and queue are all taken: every call must be rejected, quickly,
// without growing goroutines or heap.
func BenchmarkFlood(b *testing.B) {
	b.Run("n=1e6/garrison-TryGo", func(b *testing.B) {
		const n = 1_000_000
		limit := runtime.GOMAXPROCS(0)
		s, err := spawn.New(spawn.WithMaxConcurrent(limit), spawn.WithQueue(1024))
		if err != nil {
			b.Fatal(err)
		}
		release := make(chan struct{})
		block := func(context.Context) error { <-release; return nil }
		for s.TryGo(block) == nil {
		}
		noop := func(context.Context) error { return nil }
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		b.ResetTimer()
		for range b.N {
			for range n {
				if s.TryGo(noop) == nil {
					b.Fatal("TryGo admitted a task into a full spawner")
				}
			}
		}
		b.StopTimer()
		g1 := runtime.NumGoroutine()
		runtime.ReadMemStats(&after)
		close(release)
		if err := s.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		calls := float64(b.N) * n
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/calls, "ns/task")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/calls, "allocs/task")
		b.ReportMetric(float64(max(g0, g1)), "peak-goroutines")
		b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/flood")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-growth-MiB")
	})
}
