// Package garrisongrpc keeps a gRPC server answering while a client floods
// it with calls or streams: one peer sending faster than its share, more
// concurrent handlers than the machine can run, handlers that never give up,
// and streams that never stop sending. It applies garrison's primitives as
// gRPC server interceptors.
//
//	perPeer, err := limiter.NewKeyed(50, 100) // 50 calls/s per peer, bursts of 100
//	if err != nil {
//		return err
//	}
//	handlers, err := spawn.New(spawn.WithMaxConcurrent(256), spawn.WithQueue(256))
//	if err != nil {
//		return err
//	}
//	guard, err := garrisongrpc.New(
//		garrisongrpc.WithRateLimit(perPeer),
//		garrisongrpc.WithSpawner(handlers),
//		garrisongrpc.WithTimeout(2*time.Second),
//		garrisongrpc.WithMaxStreamMessages(10_000))
//	if err != nil {
//		return err
//	}
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(guard.UnaryServerInterceptor()),
//		grpc.ChainStreamInterceptor(guard.StreamServerInterceptor()))
//
// A call over its peer's rate is refused with codes.ResourceExhausted, a
// call the spawner cannot admit with codes.Unavailable; both carry an
// errdetails.RetryInfo saying when to retry, so well-behaved clients back
// off. A handler that outlives its budget ends with codes.DeadlineExceeded,
// one that panics with codes.Internal, and the server keeps running.
// Every call ends in exactly one state of Stats.
//
// The package is named garrisongrpc so that it does not shadow grpc.
package garrisongrpc
