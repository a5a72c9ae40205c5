package garrisongrpc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	garrisongrpc "github.com/garrison-go/garrison/contrib/grpc"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/spawn"
)

// retryDelay returns err's gRPC code and the delay of its RetryInfo, or
// -1 if it has none.
func retryDelay(err error) (codes.Code, time.Duration) {
	st := status.Convert(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return st.Code(), ri.GetRetryDelay().AsDuration()
		}
	}
	return st.Code(), -1
}

func newGuard(t *testing.T, opts ...garrisongrpc.Option) *garrisongrpc.Guard {
	t.Helper()
	g, err := garrisongrpc.New(opts...)
	require.NoError(t, err)
	return g
}

func interceptors(g *garrisongrpc.Guard) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(g.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(g.StreamServerInterceptor()),
	}
}

// Twenty peers flood the server while one legitimate peer makes a few
// calls: each peer gets exactly its burst, every refusal is
// ResourceExhausted with a retry delay, the legitimate peer is never
// refused, and every call is accounted for exactly once.
func TestFloodFromManyPeers(t *testing.T) {
	const (
		peers   = 20
		perPeer = 30
		burst   = 5
	)
	// One event per 1000 s: nothing refills during the test.
	perIP, err := limiter.NewKeyed(0.001, burst)
	require.NoError(t, err)
	handlers, err := spawn.New(spawn.WithMaxConcurrent(4), spawn.WithQueue(256), spawn.WithMaxWaiters(1024))
	require.NoError(t, err)
	defer func() { require.NoError(t, handlers.Shutdown(context.Background())) }()
	g := newGuard(t, garrisongrpc.WithRateLimit(perIP), garrisongrpc.WithSpawner(handlers),
		garrisongrpc.WithTimeout(10*time.Second))
	addr := serve(t, &echoServer{}, interceptors(g)...)

	type tally struct{ ok, limited, other int }
	results := make([]tally, peers)
	var wg sync.WaitGroup
	for p := range peers {
		conn := dial(t, addr, fmt.Sprintf("127.0.0.%d", p+2))
		var mu sync.Mutex
		for range 3 { // three concurrent callers per peer
			wg.Go(func() {
				for range perPeer / 3 {
					err := unary(context.Background(), conn, "flood")
					code, delay := retryDelay(err)
					mu.Lock()
					switch {
					case err == nil:
						results[p].ok++
					case code == codes.ResourceExhausted && delay > 0:
						results[p].limited++
					default:
						results[p].other++
						t.Errorf("peer %d: %v", p, err)
					}
					mu.Unlock()
				}
			})
		}
	}
	legit := dial(t, addr, "127.0.0.1")
	for i := range burst {
		require.NoError(t, unary(context.Background(), legit, "hello"), "legitimate call %d", i)
	}
	wg.Wait()

	for p, r := range results {
		assert.Equal(t, tally{ok: burst, limited: perPeer - burst}, r, "peer 127.0.0.%d", p+2)
	}
	st := g.Stats()
	assert.Equal(t, uint64(peers*perPeer+burst), st.Calls)
	assert.Equal(t, uint64(peers*burst+burst), st.Admitted)
	assert.Equal(t, uint64(peers*(perPeer-burst)), st.RateLimited)
	assert.Equal(t, st.Calls, st.Admitted+st.RateLimited+st.LimiterFailed+st.Saturated)
	hs := handlers.Stats()
	assert.Equal(t, int64(st.Admitted), hs.Succeeded)
}

// The spawner caps the handlers running at once; a call over the cap is
// refused at once with Unavailable and the configured retry delay.
func TestConcurrencyCap(t *testing.T) {
	handlers, err := spawn.New(spawn.WithMaxConcurrent(2), spawn.WithQueue(0), spawn.WithMaxWaiters(0))
	require.NoError(t, err)
	defer func() { require.NoError(t, handlers.Shutdown(context.Background())) }()
	g := newGuard(t, garrisongrpc.WithSpawner(handlers), garrisongrpc.WithRetryAfter(3*time.Second))
	release := make(chan struct{})
	srv := &echoServer{unary: func(ctx context.Context, in *wrapperspb.StringValue) error {
		if in.GetValue() == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}}
	conn := dial(t, serve(t, srv, interceptors(g)...), "127.0.0.1")

	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- unary(context.Background(), conn, "slow") }()
	}
	require.Eventually(t, func() bool { return handlers.Stats().Running == 2 }, 10*time.Second, time.Millisecond)
	code, delay := retryDelay(unary(context.Background(), conn, "fast"))
	assert.Equal(t, codes.Unavailable, code)
	assert.Equal(t, 3*time.Second, delay)
	close(release)
	for range 2 {
		require.NoError(t, <-errs)
	}
	require.NoError(t, unary(context.Background(), conn, "fast"))
	st := g.Stats()
	assert.Equal(t, garrisongrpc.Stats{Calls: 4, Admitted: 3, Saturated: 1}, st)
}

// A handler that outlives its budget is answered DeadlineExceeded; one
// that panics is answered Internal and the server keeps serving.
func TestBudgetAndPanic(t *testing.T) {
	handlers, err := spawn.New()
	require.NoError(t, err)
	defer func() { require.NoError(t, handlers.Shutdown(context.Background())) }()
	g := newGuard(t, garrisongrpc.WithSpawner(handlers), garrisongrpc.WithTimeout(20*time.Millisecond))
	srv := &echoServer{unary: func(ctx context.Context, in *wrapperspb.StringValue) error {
		switch in.GetValue() {
		case "hang":
			<-ctx.Done()
			return ctx.Err()
		case "panic":
			panic("handler bug")
		}
		return nil
	}}
	conn := dial(t, serve(t, srv, interceptors(g)...), "127.0.0.1")

	err = unary(context.Background(), conn, "hang")
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "/garrison.test.Echo/Unary")
	err = unary(context.Background(), conn, "panic")
	assert.Equal(t, codes.Internal, status.Code(err), "%v", err)
	assert.NotContains(t, status.Convert(err).Message(), "goroutine", "no stack to the client")
	require.NoError(t, unary(context.Background(), conn, "ok"))
	st := g.Stats()
	assert.Equal(t, garrisongrpc.Stats{Calls: 3, Admitted: 3, DeadlineExceeded: 1, Panics: 1}, st)
	assert.Equal(t, int64(1), handlers.Stats().Panicked)
}

// bidi opens the Bidi stream and returns a send-then-receive function.
func bidi(t *testing.T, conn *grpc.ClientConn) (func(string) error, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cs, err := conn.NewStream(ctx, &echoDesc.Streams[0], "/garrison.test.Echo/Bidi")
	require.NoError(t, err)
	roundTrip := func(msg string) error {
		if err := cs.SendMsg(wrapperspb.String(msg)); err != nil {
			return cs.RecvMsg(new(wrapperspb.StringValue)) // the status that ended it
		}
		return cs.RecvMsg(new(wrapperspb.StringValue))
	}
	return roundTrip, cancel
}

func TestStreamMessageBounds(t *testing.T) {
	g := newGuard(t, garrisongrpc.WithMaxStreamMessages(3))
	conn := dial(t, serve(t, &echoServer{}, interceptors(g)...), "127.0.0.1")
	send, cancel := bidi(t, conn)
	defer cancel()
	for i := range 3 {
		require.NoError(t, send("m"), "message %d", i)
	}
	err := send("one too many")
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Eventually(t, func() bool { return g.Stats().StreamMessages == 1 }, 10*time.Second, time.Millisecond)

	// Another stream has its own count.
	send2, cancel2 := bidi(t, conn)
	defer cancel2()
	require.NoError(t, send2("fresh"))
}

func TestStreamMessageRate(t *testing.T) {
	g := newGuard(t, garrisongrpc.WithStreamMessageRate(0.001, 2))
	conn := dial(t, serve(t, &echoServer{}, interceptors(g)...), "127.0.0.1")
	send, cancel := bidi(t, conn)
	defer cancel()
	require.NoError(t, send("a"))
	require.NoError(t, send("b"))
	err := send("c")
	code, delay := retryDelay(err)
	assert.Equal(t, codes.ResourceExhausted, code, "%v", err)
	assert.Greater(t, delay, time.Duration(0))
	require.Eventually(t, func() bool { return g.Stats().StreamRate == 1 }, 10*time.Second, time.Millisecond)
}

// failingLimiter is a RateLimiter whose store is down and whose fail
// policy denies.
type failingLimiter struct{}

func (failingLimiter) AllowContext(context.Context, string) (limiter.Decision, error) {
	return limiter.Decision{Reason: limiter.RequestRate, RetryAfter: 2 * time.Second}, errors.New("store down")
}

func TestLimiterFailureFollowsFailPolicy(t *testing.T) {
	g := newGuard(t, garrisongrpc.WithRateLimit(failingLimiter{}))
	conn := dial(t, serve(t, &echoServer{}, interceptors(g)...), "127.0.0.1")
	code, delay := retryDelay(unary(context.Background(), conn, "x"))
	assert.Equal(t, codes.Unavailable, code)
	assert.Equal(t, 2*time.Second, delay)
	assert.Equal(t, garrisongrpc.Stats{Calls: 1, LimiterFailed: 1}, g.Stats())
}

// WithKeyFunc keys by what it returns; a failing key func falls back to
// the peer address rather than letting the call through unlimited.
func TestKeyFunc(t *testing.T) {
	perKey, err := limiter.NewKeyed(0.001, 1)
	require.NoError(t, err)
	g := newGuard(t, garrisongrpc.WithRateLimit(perKey), garrisongrpc.WithKeyFunc(func(ctx context.Context) (string, error) {
		return "", errors.New("no key")
	}))
	conn := dial(t, serve(t, &echoServer{}, interceptors(g)...), "127.0.0.1")
	require.NoError(t, unary(context.Background(), conn, "x"))
	assert.Equal(t, codes.ResourceExhausted, status.Code(unary(context.Background(), conn, "x")))
}

func TestOptionErrors(t *testing.T) {
	for name, opt := range map[string]garrisongrpc.Option{
		"nil":          nil,
		"nil limiter":  garrisongrpc.WithRateLimit(nil),
		"nil spawner":  garrisongrpc.WithSpawner(nil),
		"nil key func": garrisongrpc.WithKeyFunc(nil),
		"timeout":      garrisongrpc.WithTimeout(0),
		"messages":     garrisongrpc.WithMaxStreamMessages(0),
		"rate":         garrisongrpc.WithStreamMessageRate(0, 1),
		"burst":        garrisongrpc.WithStreamMessageRate(1, 0),
		"retry after":  garrisongrpc.WithRetryAfter(-time.Second),
	} {
		_, err := garrisongrpc.New(opt)
		assert.Error(t, err, name)
	}
}
