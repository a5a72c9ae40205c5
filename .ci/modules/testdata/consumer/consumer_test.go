// Package consumer is a module outside the garrison repository, as a user
// would write it: it imports the root packages and every nested module at
// a released version and checks that they work together. The modules
// check copies it to a temporary directory and writes its go.mod there.
package consumer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/garrison-go/garrison/changuard"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/limiter/redisstore"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

func TestRootPackages(t *testing.T) {
	ctx := context.Background()
	s, err := spawn.New(spawn.WithMaxConcurrent(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Go(ctx, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Succeeded != 1 {
		t.Fatalf("spawn: %+v, want one success", st)
	}

	k, err := limiter.NewKeyed(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := limiter.Middleware(k)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	codes := []int{}
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		codes = append(codes, rec.Code)
	}
	if codes[0] != http.StatusOK || codes[1] != http.StatusTooManyRequests {
		t.Fatalf("limiter middleware answered %v, want [200 429]", codes)
	}

	c, err := changuard.NewChan[int](1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.TrySend(1); err != nil {
		t.Fatal(err)
	}

	var mu lockorder.Mutex
	mu.Lock()
	mu.Unlock()

	err = timeout.Run(ctx, time.Nanosecond, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout.Run: %v, want a deadline error", err)
	}
}

func TestRedisstoreFailsLocal(t *testing.T) {
	// Nothing listens on port 1: every decision falls back to the
	// in-process limiter, which is what this module must do without Redis.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()
	rl, err := redisstore.New(client, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := rl.AllowContext(context.Background(), "k")
	if !errors.Is(err, redisstore.ErrUnavailable) || !d.Allowed {
		t.Fatalf("AllowContext = %+v, %v; want allowed with ErrUnavailable", d, err)
	}
}
