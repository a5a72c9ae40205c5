package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/limiter/redisstore"
)

// ExampleNew limits each client to 10 requests per second with bursts of
// 20, across every instance that uses the same Redis. It needs a Redis
// server (GARRISON_REDIS_ADDR, else localhost:6379), so it is compiled but
// not run by go test; TestExampleFlow runs the same steps.
func ExampleNew() {
	addr := os.Getenv("GARRISON_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	client := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true, // lets WithTimeout bound each decision
	})
	defer client.Close()

	rl, err := redisstore.New(client, 10, 20,
		redisstore.WithPrefix("api:"),
		redisstore.WithFailPolicy(redisstore.FailLocal),
		redisstore.WithInstances(4), // each instance admits 1/4 while Redis is away
		redisstore.WithDenyCache(10_000),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := rl.AllowContext(context.Background(), "client-42")
	fmt.Println(d.Allowed, d.Remaining, err)

	// The same limiter guards an HTTP handler.
	handler := limiter.RateLimitMiddleware(rl)(http.NotFoundHandler())
	_ = handler
}

// ExampleNew_invalid shows that bad arguments are errors, never panics.
func ExampleNew_invalid() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()

	_, err := redisstore.New(client, 10, 0)
	fmt.Println(errors.Is(err, redisstore.ErrInvalidOption), err)

	deaf := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer deaf.Close()
	_, err = redisstore.New(deaf, 10, 20, redisstore.WithTimeout(5*time.Millisecond))
	fmt.Println(err)
	// Output:
	// true redisstore: invalid option: limiter: invalid option: burst 0 must be in [1, 1000000000]
	// redisstore: invalid option: client ignores context deadlines: set ContextTimeoutEnabled: true in its options so WithTimeout bounds each decision
}
