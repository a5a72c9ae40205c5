// Package redisstorebench compares limiter/redisstore with
// github.com/go-redis/redis_rate on a real Redis. Set GARRISON_REDIS_ADDR to
// host:port of a redis-server; without it every benchmark is skipped.
package redisstorebench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/limiter/redisstore"
)

// roundTrips counts the commands a client sends: both limiters use the
// same client type, so the count compares them exactly.
type roundTrips struct{ n atomic.Int64 }

func (*roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

func newClient(b *testing.B) (*redis.Client, *roundTrips) {
	b.Helper()
	addr := os.Getenv("GARRISON_REDIS_ADDR")
	if addr == "" {
		b.Skip("GARRISON_REDIS_ADDR is empty: start a redis-server and set it to host:port")
	}
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Fatalf("redis at %s: %v", addr, err)
	}
	h := &roundTrips{}
	c.AddHook(h)
	return c, h
}

// serverTime is the time Redis has spent executing EVALSHA, from INFO
// commandstats: the server-side cost of the two scripts, unaffected by
// client scheduling.
func serverTime(b *testing.B, c *redis.Client) time.Duration {
	b.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(field, "usec="); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				return time.Duration(us) * time.Microsecond
			}
		}
	}
	return 0
}

// costs reports, per op, the round trips, the server's script time and the
// client process' CPU time between start and the end of the loop.
type costs struct {
	rt     *roundTrips
	n      int64
	server time.Duration
	cpu    time.Duration
	cpuOK  bool
}

func startCosts(b *testing.B, c *redis.Client, rt *roundTrips) costs {
	cs := costs{rt: rt, server: serverTime(b, c)}
	cs.cpu, cs.cpuOK = processCPU()
	cs.n = rt.n.Load()
	return cs
}

func (cs costs) report(b *testing.B, c *redis.Client) {
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(cs.rt.n.Load()-cs.n)/n, "roundtrips/op")
	if cpu, ok := processCPU(); ok && cs.cpuOK {
		b.ReportMetric(float64(cpu-cs.cpu)/n, "client-cpu-ns/op")
	}
	b.ReportMetric(float64(serverTime(b, c)-cs.server)/n, "server-ns/op")
}

// decider is one rate-limit decision, so both libraries run the same loop.
type decider func(ctx context.Context, key string) (allowed bool, err error)

func garrison(b *testing.B, c *redis.Client, r, burst int, opts ...redisstore.Option) decider {
	b.Helper()
	// A timeout far above any loaded-machine latency and FailClosed with
	// errors checked: a fallback decision would be faster and skew the run.
	base := []redisstore.Option{
		redisstore.WithPrefix(fmt.Sprintf("bench:%x:", rand.Uint64())),
		redisstore.WithTimeout(5 * time.Second),
		redisstore.WithFailPolicy(redisstore.FailClosed),
	}
	l, err := redisstore.New(c, rate.Limit(r), burst, append(base, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	return func(ctx context.Context, key string) (bool, error) {
		d, err := l.AllowContext(ctx, key)
		return d.Allowed, err
	}
}

func redisRate(c *redis.Client, r, burst int) decider {
	l := redis_rate.NewLimiter(c)
	limit := redis_rate.Limit{Rate: r, Burst: burst, Period: time.Second}
	run := fmt.Sprintf("bench:%x:", rand.Uint64())
	return func(ctx context.Context, key string) (bool, error) {
		res, err := l.Allow(ctx, run+key, limit)
		if err != nil {
			return false, err
		}
		return res.Allowed > 0, nil
	}
}

// BenchmarkAllowedKey is one decision on a key well under its limit: the
// cost every legitimate request pays.
func BenchmarkAllowedKey(b *testing.B) {
	const r, burst = 10_000, 1_000_000 // limiter.MaxRate; a burst no run exhausts
	for _, impl := range []string{"redis_rate", "garrison"} {
		b.Run(impl, func(b *testing.B) {
			c, rt := newClient(b)
			var decide decider
			if impl == "garrison" {
				decide = garrison(b, c, r, burst)
			} else {
				decide = redisRate(c, r, burst)
			}
			ctx := context.Background()
			// Loads the script, so the loop measures the steady state.
			if _, err := decide(ctx, "warm"); err != nil {
				b.Fatal(err)
			}
			cs := startCosts(b, c, rt)
			b.ResetTimer()
			for b.Loop() {
				allowed, err := decide(ctx, "key")
				if err != nil {
					b.Fatal(err)
				}
				if !allowed {
					b.Fatal("the key must stay under its limit")
				}
			}
			cs.report(b, c)
		})
	}
}

// BenchmarkAllowedKeyParallel is BenchmarkAllowedKey from many goroutines
// at once, as a server's handlers would call it: the client's pool and
// Redis' single thread are shared.
func BenchmarkAllowedKeyParallel(b *testing.B) {
	const r, burst = 10_000, 1_000_000 // limiter.MaxRate; a burst no run exhausts
	for _, impl := range []string{"redis_rate", "garrison"} {
		b.Run(impl, func(b *testing.B) {
			c, rt := newClient(b)
			var decide decider
			if impl == "garrison" {
				decide = garrison(b, c, r, burst)
			} else {
				decide = redisRate(c, r, burst)
			}
			ctx := context.Background()
			if _, err := decide(ctx, "warm"); err != nil {
				b.Fatal(err)
			}
			cs := startCosts(b, c, rt)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					allowed, err := decide(ctx, "key")
					if err != nil {
						b.Error(err)
						return
					}
					if !allowed {
						b.Error("the key must stay under its limit")
						return
					}
				}
			})
			cs.report(b, c)
		})
	}
}

// BenchmarkAttackMix is the traffic of an attack: 90% of requests come from
// ten keys already over their limit, 10% from distinct legitimate keys.
func BenchmarkAttackMix(b *testing.B) {
	const r, burst, attackers = 10, 10, 10
	for _, impl := range []string{"redis_rate", "garrison-nocache", "garrison-denycache"} {
		b.Run(impl, func(b *testing.B) {
			c, rt := newClient(b)
			var decide decider
			switch impl {
			case "redis_rate":
				decide = redisRate(c, r, burst)
			case "garrison-nocache":
				decide = garrison(b, c, r, burst)
			default:
				decide = garrison(b, c, r, burst, redisstore.WithDenyCache(1024))
			}
			ctx := context.Background()
			keys := make([]string, attackers)
			for i := range keys {
				keys[i] = "attacker-" + strconv.Itoa(i)
				for range burst + 1 {
					if _, err := decide(ctx, keys[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			var allowed, legit int
			cs := startCosts(b, c, rt)
			b.ResetTimer()
			i := 0
			for b.Loop() {
				key := keys[i%attackers]
				if i%10 == 0 {
					key = "user-" + strconv.Itoa(i)
					legit++
				}
				i++
				ok, err := decide(ctx, key)
				if err != nil {
					b.Fatal(err)
				}
				if ok {
					allowed++
				}
			}
			cs.report(b, c)
			// Legitimate keys are all admitted and attackers get at most
			// their refill, so this stays near 10% for every implementation.
			b.ReportMetric(100*float64(allowed)/float64(b.N), "allowed-%")
			if allowed < legit {
				b.Fatalf("%d legitimate requests but only %d allowed", legit, allowed)
			}
		})
	}
}
