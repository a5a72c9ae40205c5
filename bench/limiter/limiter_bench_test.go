// Package limiterbench compares limiter with its peers side by side. The
// last '/'-element of each benchmark name is the implementation:
// xtime (golang.org/x/time/rate), uber (go.uber.org/ratelimit), sethvargo
// (github.com/sethvargo/go-limiter memorystore), xtime-map (a mutex-guarded
// map of x/time/rate limiters), raw (net.Listener), netutil
// (golang.org/x/net/netutil.LimitListener), semaphore (the same design in a
// few lines, whose conn can be unwrapped), garrison.
package limiterbench

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/garrison-go/garrison/limiter"
	"github.com/sethvargo/go-limiter/memorystore"
	"go.uber.org/ratelimit"
	"golang.org/x/net/netutil"
	"golang.org/x/time/rate"
)

// cpuMeter reports CPU nanoseconds per operation ("cpu-ns/op") next to
// ns/op: for RunParallel it sums all cores, so it is the CPU cost of one
// operation rather than the throughput.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := processCPU()
	return cpuMeter{t, ok}
}

func (m cpuMeter) report(b *testing.B) {
	if t, ok := processCPU(); ok && m.ok && b.N > 0 {
		b.ReportMetric(float64(t-m.start)/float64(b.N), "cpu-ns/op")
	}
}

// allower is the common shape of the single-key limiters under test.
type allower func() bool

// singleKey returns fresh limiters admitting r events per second in bursts
// of burst. uber's Take blocks to pace instead of refusing, so it only runs
// where the rate never makes it wait for long.
func singleKey(b *testing.B, r float64, burst int) map[string]allower {
	k, err := limiter.NewKeyed(rate.Limit(r), burst)
	if err != nil {
		b.Fatal(err)
	}
	x := rate.NewLimiter(rate.Limit(r), burst)
	m := map[string]allower{
		"xtime":    x.Allow,
		"garrison": func() bool { return k.Allow("client").Allowed },
	}
	if r >= 1e8 {
		u := ratelimit.New(int(r), ratelimit.WithSlack(burst))
		m["uber"] = func() bool { u.Take(); return true }
	}
	return m
}

var impls1 = []string{"xtime", "uber", "garrison"}

// BenchmarkAllowSingleKey: one hot key. "allow" runs at a rate no core can
// exceed, so nearly every call admits and writes; "deny" is an exhausted
// key under attack: every call refuses.
func BenchmarkAllowSingleKey(b *testing.B) {
	for _, mode := range []struct {
		name  string
		r     float64
		burst int
	}{{"allow", 1e9, 1000}, {"deny", 1e-3, 1}} {
		for _, par := range []string{"serial", "parallel"} {
			for _, impl := range impls1 {
				b.Run(mode.name+"/"+par+"/"+impl, func(b *testing.B) {
					f, ok := singleKey(b, mode.r, mode.burst)[impl]
					if !ok {
						b.Skip("blocking limiter: no deny mode")
					}
					f()
					b.ReportAllocs()
					b.ResetTimer()
					cpu := startCPU()
					defer cpu.report(b)
					if par == "serial" {
						for i := 0; i < b.N; i++ {
							f()
						}
						return
					}
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							f()
						}
					})
				})
			}
		}
	}
}

// xtimeMap is the usual hand-rolled keyed limiter: a map of x/time/rate
// limiters under a mutex, growing with every new key.
type xtimeMap struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
	r  rate.Limit
	b  int
}

func (x *xtimeMap) allow(key string) bool {
	x.mu.Lock()
	l, ok := x.m[key]
	if !ok {
		l = rate.NewLimiter(x.r, x.b)
		x.m[key] = l
	}
	x.mu.Unlock()
	return l.Allow()
}

// keyedImpl builds a keyed limiter (10 events/s, burst 10) and its closer.
func keyedImpl(b *testing.B, impl string, capacity int) (func(string) bool, func()) {
	switch impl {
	case "sethvargo":
		s, err := memorystore.New(&memorystore.Config{Tokens: 10, Interval: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		return func(key string) bool {
				_, _, _, ok, _ := s.Take(ctx, key)
				return ok
			}, func() {
				_ = s.Close(ctx)
			}
	case "xtime-map":
		x := &xtimeMap{m: map[string]*rate.Limiter{}, r: 10, b: 10}
		return x.allow, func() {}
	case "garrison":
		k, err := limiter.NewKeyed(10, 10, limiter.WithCapacity(capacity))
		if err != nil {
			b.Fatal(err)
		}
		return func(key string) bool { return k.Allow(key).Allowed }, func() {}
	}
	b.Fatalf("unknown impl %s", impl)
	return nil, nil
}

var implsKeyed = []string{"sethvargo", "xtime-map", "garrison"}

func makeKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "client-" + strconv.Itoa(i)
	}
	return keys
}

// BenchmarkKeyed: 1e5 clients round-robin, every key already tracked
// (garrison sized to hold them: WithCapacity(1<<17)).
func BenchmarkKeyed(b *testing.B) {
	const n = 100_000
	keys := makeKeys(n)
	for _, par := range []string{"serial", "parallel"} {
		for _, impl := range implsKeyed {
			b.Run("keys=1e5/"+par+"/"+impl, func(b *testing.B) {
				allow, closeFn := keyedImpl(b, impl, 1<<17)
				defer closeFn()
				for _, k := range keys {
					allow(k)
				}
				b.ReportAllocs()
				b.ResetTimer()
				cpu := startCPU()
				defer cpu.report(b)
				if par == "serial" {
					for i := 0; i < b.N; i++ {
						allow(keys[i%n])
					}
					return
				}
				var seq sync.Mutex
				next := 0
				b.RunParallel(func(pb *testing.PB) {
					seq.Lock()
					i := next * 7919
					next++
					seq.Unlock()
					for pb.Next() {
						allow(keys[i%n])
						i++
					}
				})
			})
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemory: heap held by a keyed limiter after n distinct keys, in
// MiB (the keys' own strings are allocated beforehand and not counted).
// garrison uses its default capacity (65536 keys).
func BenchmarkMemory(b *testing.B) {
	for _, n := range []int{65536, 1_000_000} {
		keys := makeKeys(n)
		for _, impl := range implsKeyed {
			b.Run("keys="+strconv.Itoa(n)+"/"+impl, func(b *testing.B) {
				var mib float64
				for i := 0; i < b.N; i++ {
					before := heapInUse()
					allow, closeFn := keyedImpl(b, impl, limiter.DefaultCapacity)
					for _, k := range keys {
						allow(k)
					}
					after := heapInUse()
					runtime.KeepAlive(allow)
					closeFn()
					mib = max(mib, float64(int64(after)-int64(before))/(1<<20))
				}
				b.ReportMetric(mib, "MiB")
			})
		}
		runtime.KeepAlive(keys)
	}
}

// BenchmarkAllowAddr: the 0-alloc address path a middleware uses, 1e5
// IPv6 clients (garrison only; for the per-request cost of a key string
// see BenchmarkKeyed).
func BenchmarkAllowAddr(b *testing.B) {
	b.Run("keys=1e5/garrison", func(b *testing.B) {
		k, err := limiter.NewKeyed(10, 10, limiter.WithCapacity(1<<17))
		if err != nil {
			b.Fatal(err)
		}
		addrs := make([]netip.Addr, 100_000)
		for i := range addrs {
			addrs[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 0, 1})
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := startCPU()
		defer cpu.report(b)
		for i := 0; i < b.N; i++ {
			k.AllowAddr(addrs[i%len(addrs)])
		}
	})
}

// semListener is the netutil.LimitListener design in a few lines: a
// semaphore acquired before Accept (blocking), released on Close.
type semListener struct {
	net.Listener
	sem chan struct{}
}

type semConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *semConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

func (l *semListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &semConn{Conn: c, release: func() { <-l.sem }}, nil
}

// BenchmarkAccept: per op, one loopback connection dialled, accepted and
// closed by both sides (with resets, so no TIME_WAIT piles up).
// garrison-full adds a per-IP cap, a per-IP accept rate and a first-byte
// timeout to the defaults; garrison-preempt is policy Preempt (per-source
// ledger) with the options hardened-server uses.
func BenchmarkAccept(b *testing.B) {
	for _, impl := range []string{"raw", "netutil", "semaphore", "garrison", "garrison-full", "garrison-preempt"} {
		b.Run("loopback/"+impl, func(b *testing.B) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			var l net.Listener = inner
			switch impl {
			case "netutil":
				l = netutil.LimitListener(inner, limiter.DefaultMaxConns)
			case "semaphore":
				l = &semListener{Listener: inner, sem: make(chan struct{}, limiter.DefaultMaxConns)}
			case "garrison":
				if l, err = limiter.NewListener(inner); err != nil {
					b.Fatal(err)
				}
			case "garrison-preempt":
				if l, err = limiter.NewListener(inner, hardenedOptions()...); err != nil {
					b.Fatal(err)
				}
			case "garrison-full":
				if l, err = limiter.NewListener(inner, limiter.WithMaxConnsPerIP(64),
					limiter.WithAcceptRatePerIP(1e9, 1000), limiter.WithFirstByteTimeout(10*time.Second)); err != nil {
					b.Fatal(err)
				}
			}
			defer l.Close()
			addr := l.Addr().String()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			defer cpu.report(b)
			for i := 0; i < b.N; i++ {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				s, err := l.Accept()
				if err != nil {
					b.Fatal(err)
				}
				_ = c.(*net.TCPConn).SetLinger(0)
				if nc, ok := s.(interface{ NetConn() net.Conn }); ok {
					_ = nc.NetConn().(*net.TCPConn).SetLinger(0)
				} else if tc, ok := s.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				} else if sc, ok := s.(*semConn); ok {
					_ = sc.Conn.(*net.TCPConn).SetLinger(0)
				}
				// netutil's conn hides the *net.TCPConn (golang/go#64830):
				// only the client's linger applies, and its reset is enough.
				_ = c.Close()
				_ = s.Close()
			}
		})
	}
}
