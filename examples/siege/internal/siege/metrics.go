package siege

import (
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"time"
)

// Sample is one legitimate request: when it started relative to the start
// of the attack, how long it took, and whether it succeeded.
type Sample struct {
	AtMS      float64 `json:"at_ms"`
	LatencyMS float64 `json:"latency_ms"`
	OK        bool    `json:"ok"`
	Answered  bool    `json:"answered"`
	Status    int     `json:"status,omitempty"`
}

// Point is one reading of the process's goroutine count and heap.
type Point struct {
	AtMS       float64 `json:"at_ms"`
	Goroutines int     `json:"goroutines"`
	HeapMiB    float64 `json:"heap_mib"`
}

// legitStats summarises samples. A request that got no answer within the
// client timeout counts with latency = timeout, because that is what its
// user waited before giving up.
type legitStats struct {
	N        int
	OK       int
	Answered int
	P50, P99 float64
}

func summarize(samples []Sample, timeout time.Duration) legitStats {
	st := legitStats{N: len(samples)}
	lat := make([]float64, 0, len(samples))
	limit := float64(timeout) / float64(time.Millisecond)
	for _, s := range samples {
		l := s.LatencyMS
		if !s.Answered {
			l = limit
		}
		lat = append(lat, l)
		if s.OK {
			st.OK++
		}
		if s.Answered {
			st.Answered++
		}
	}
	st.P50 = percentile(lat, 0.50)
	st.P99 = percentile(lat, 0.99)
	return st
}

// percentile returns the nearest-rank percentile of xs, or NaN if empty.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func pct(n, of int) float64 {
	if of == 0 {
		return math.NaN()
	}
	return 100 * float64(n) / float64(of)
}

// sampler reads the goroutine count and live heap every period, keeping the
// peaks above the baseline measured when it started. runtime/metrics reads
// are cheap and stop no world, so sampling does not disturb the run.
type sampler struct {
	start    time.Time
	baseG    int
	baseHeap float64
	stop     chan struct{}
	done     chan struct{}

	mu       sync.Mutex
	peakG    int
	peakHeap float64
	series   []Point
}

var sampleNames = []metrics.Sample{
	{Name: "/sched/goroutines:goroutines"},
	{Name: "/memory/classes/heap/objects:bytes"},
}

func readNow() (goroutines int, heapMiB float64) {
	s := slices.Clone(sampleNames)
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		goroutines = int(s[0].Value.Uint64())
	} else {
		goroutines = runtime.NumGoroutine()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		heapMiB = float64(s[1].Value.Uint64()) / (1 << 20)
	}
	return goroutines, heapMiB
}

func startSampler(start time.Time, period time.Duration) *sampler {
	g, h := readNow()
	s := &sampler{start: start, baseG: g, baseHeap: h, peakG: g, peakHeap: h,
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			s.read()
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *sampler) read() {
	g, h := readNow()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peakG = max(s.peakG, g)
	s.peakHeap = max(s.peakHeap, h)
	s.series = append(s.series, Point{AtMS: ms(time.Since(s.start)), Goroutines: g, HeapMiB: h})
}

// finish stops sampling and returns the peaks above the baseline.
func (s *sampler) finish() (peakG int, peakHeapMiB float64, series []Point) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakG - s.baseG, max(s.peakHeap-s.baseHeap, 0), s.series
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// settle gives the previous run's goroutines time to exit and collects its
// garbage, so one twin's leftovers are not charged to the other. It returns
// the goroutine count it settled at.
func settle(limit time.Duration) int {
	deadline := time.Now().Add(limit)
	prev := -1
	for {
		runtime.GC()
		g, _ := readNow()
		if g == prev || time.Now().After(deadline) {
			return g
		}
		prev = g
		time.Sleep(20 * time.Millisecond)
	}
}
