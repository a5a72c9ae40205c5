package garrisongrpc

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// boundedStream is a grpc.ServerStream whose context is the handler's and
// whose RecvMsg enforces the per-stream message bounds.
type boundedStream struct {
	grpc.ServerStream
	ctx      context.Context
	g        *Guard
	received atomic.Int64  // messages the client sent, counted before they are read
	limit    *rate.Limiter // nil without WithStreamMessageRate
	refused  atomic.Bool   // the stream was already counted as refused
}

// wrap returns ss with ctx as its context and the Guard's message bounds.
func (g *Guard) wrap(ctx context.Context, ss grpc.ServerStream) grpc.ServerStream {
	if ctx == ss.Context() && g.cfg.maxMsgs == 0 && g.cfg.msgRate == 0 {
		return ss
	}
	bs := &boundedStream{ServerStream: ss, ctx: ctx, g: g}
	if g.cfg.msgRate > 0 {
		bs.limit = rate.NewLimiter(g.cfg.msgRate, g.cfg.msgBurst)
	}
	return bs
}

// Context returns the handler's context: the stream's, bounded by the
// budget and the spawner.
func (s *boundedStream) Context() context.Context { return s.ctx }

// RecvMsg refuses a message past the stream's bounds before reading it,
// so a refused message is never handed to the handler.
func (s *boundedStream) RecvMsg(m any) error {
	if n := s.g.cfg.maxMsgs; n > 0 && s.received.Add(1) > n {
		s.countOnce(&s.g.streamMessages)
		return refusal(codes.ResourceExhausted, "garrison: too many messages on this stream", 0, time.Second)
	}
	if s.limit != nil {
		r := s.limit.Reserve()
		if d := r.Delay(); d > 0 {
			r.Cancel()
			s.countOnce(&s.g.streamRate)
			return refusal(codes.ResourceExhausted, "garrison: stream message rate exceeded", d, time.Second)
		}
	}
	return s.ServerStream.RecvMsg(m)
}

// countOnce counts the stream in c the first time it refuses a message.
func (s *boundedStream) countOnce(c *atomic.Uint64) {
	if s.refused.CompareAndSwap(false, true) {
		c.Add(1)
	}
}
