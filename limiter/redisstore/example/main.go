// Command example shows why a rate limit must be shared once a service runs
// on more than one instance. It stands up three instances of one service,
// as if behind a load balancer, and lets one client send 60 requests spread
// round-robin across them: first with an in-process limiter.Keyed in each
// instance, then with a redisstore.Limiter in each, all on one Redis.
//
//	cd limiter/redisstore && go run ./example -redis 127.0.0.1:6379
//
// Without -redis it uses $GARRISON_REDIS_ADDR, else 127.0.0.1:6379. It
// exits 1 if Redis does not answer a PING within 2 s, or if the shared
// limit admitted more than twice its burst.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/limiter/redisstore"
)

// Every instance is configured with the same limit: 5 requests per second
// per client, in bursts of up to 10.
const (
	instances = 3
	requests  = 60
	perSecond = rate.Limit(5)
	burst     = 10
)

func main() {
	addr := flag.String("redis", "", "Redis host:port (default $GARRISON_REDIS_ADDR, else 127.0.0.1:6379)")
	flag.Parse()
	if *addr == "" {
		*addr = os.Getenv("GARRISON_REDIS_ADDR")
	}
	if *addr == "" {
		*addr = "127.0.0.1:6379"
	}
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	// A unique prefix per run: the state of an earlier run (kept in Redis
	// until its bucket refills) must not eat into this run's budget.
	prefix := fmt.Sprintf("garrison-example:%d:", time.Now().UnixNano())

	// Each instance has its own connection pool to the same Redis, as
	// separate processes would. ContextTimeoutEnabled lets the per-decision
	// timeout bound a Redis that hangs; New refuses a client without it.
	var local, shared []limiter.RateLimiter
	var first *redisstore.Limiter
	for range instances {
		client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		defer client.Close()
		// The PING fails fast on a missing Redis and, on a present one,
		// dials the connection before the timed requests below.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("redis at %s did not answer PING within 2s (start one, or pass -redis host:port): %w", addr, err)
		}
		rl, err := redisstore.New(client, perSecond, burst,
			redisstore.WithPrefix(prefix),
			// The 10 ms default suits a production network; a generous one
			// keeps this demo's counts from depending on a busy laptop.
			redisstore.WithTimeout(500*time.Millisecond),
			redisstore.WithInstances(instances))
		if err != nil {
			return err
		}
		k, err := limiter.NewKeyed(perSecond, burst)
		if err != nil {
			return err
		}
		if first == nil {
			first = rl
		}
		shared = append(shared, rl)
		local = append(local, k)
	}

	// Switching from the in-process limiter to the shared one is the one
	// constructor above: both are a limiter.RateLimiter to the middleware.
	lo, _ := attack(local)
	sh, denied := attack(shared)
	fmt.Printf("%d requests from one client, round-robin over %d instances, limit %v/s burst %d each:\n\n",
		requests, instances, float64(perSecond), burst)
	fmt.Printf("  %-28s %8s %8s   %s\n", "", "admitted", "denied", "admitted per instance")
	fmt.Printf("  %-28s %8d %8d   %v\n", "limiter.Keyed (in-process)", lo.total(), requests-lo.total(), lo)
	fmt.Printf("  %-28s %8d %8d   %v\n", "redisstore.Limiter (shared)", sh.total(), requests-sh.total(), sh)
	fmt.Printf("\nin-process limits multiply: %d instances × burst %d = %d; the shared limit admits about %d.\n",
		instances, burst, instances*burst, burst)

	if denied != nil {
		fmt.Printf("\none denied response from the shared limiter:\n  %d %s\n", denied.Code, http.StatusText(denied.Code))
		for _, h := range []string{"Retry-After", "RateLimit-Policy", "RateLimit"} {
			fmt.Printf("  %s: %s\n", h, denied.Header().Get(h))
		}
	}
	st := first.Stats()
	fmt.Printf("\nStats of instance 0's redisstore.Limiter:\n  %+v\n", st)
	// One round trip per decision, plus one when the server did not have
	// the script yet (NOSCRIPT, then EVAL, which caches it for everyone).
	if st.FallbackDecisions > 0 {
		fmt.Println("  (some decisions fell back to the local limiter: Redis was slower than the timeout)")
	}

	if sh.total() > 2*burst {
		return errors.New("the shared limit admitted more than twice its burst: it is not shared")
	}
	return nil
}

// admitted counts the requests each instance served.
type admitted [instances]int

func (a admitted) total() int {
	n := 0
	for _, c := range a {
		n += c
	}
	return n
}

// attack sends every request from the same client address, instance i%3
// serving request i, each instance being a tiny handler behind its own
// RateLimitMiddleware. It returns what each instance admitted and the first
// response that was denied. ServeHTTP on a recorder is the whole HTTP path
// without a socket.
func attack(rls []limiter.RateLimiter) (admitted, *httptest.ResponseRecorder) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	var servers []http.Handler
	for _, rl := range rls {
		servers = append(servers, limiter.RateLimitMiddleware(rl)(ok))
	}
	var got admitted
	var denied *httptest.ResponseRecorder
	for i := range requests {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "203.0.113.7:40000" // the one client, keyed by its address
		rec := httptest.NewRecorder()
		servers[i%instances].ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK:
			got[i%instances]++
		case denied == nil:
			denied = rec
		}
	}
	return got, denied
}
