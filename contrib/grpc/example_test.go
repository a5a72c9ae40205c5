package garrisongrpc_test

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	garrisongrpc "github.com/garrison-go/garrison/contrib/grpc"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/spawn"
)

func ExampleNew() {
	perPeer, err := limiter.NewKeyed(50, 100) // 50 calls/s per peer, bursts of 100
	if err != nil {
		fmt.Println(err)
		return
	}
	handlers, err := spawn.New(spawn.WithMaxConcurrent(256), spawn.WithQueue(256))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = handlers.Shutdown(context.Background()) }()
	guard, err := garrisongrpc.New(
		garrisongrpc.WithRateLimit(perPeer),
		garrisongrpc.WithSpawner(handlers),
		garrisongrpc.WithTimeout(2*time.Second),
		garrisongrpc.WithMaxStreamMessages(10_000))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(guard.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(guard.StreamServerInterceptor()))
	defer srv.Stop()
	// Register services on srv, then srv.Serve(listener); export
	// guard.Stats() with the service's metrics.
	fmt.Println("calls so far:", guard.Stats().Calls)
	// Output: calls so far: 0
}
