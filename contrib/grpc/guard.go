package garrisongrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// DefaultRetryAfter is the retry delay sent with a call refused by the
// spawner (which, unlike a rate limiter, cannot say when room will be free)
// unless WithRetryAfter says otherwise.
const DefaultRetryAfter = time.Second

// Guard holds the limits the interceptors enforce and counts what they do.
// It is safe for concurrent use; construct it with New.
type Guard struct {
	cfg config

	calls, admitted, rateLimited, limiterFailed, saturated atomic.Uint64
	deadline, panics, streamMessages, streamRate           atomic.Uint64
}

// Stats is a snapshot of a Guard's counters. Every unary call and stream
// the interceptors see is counted in Calls and refused in exactly one of
// RateLimited, LimiterFailed or Saturated, or Admitted. Of the admitted
// ones, DeadlineExceeded, Panics, StreamMessages and StreamRate count how
// some ended.
type Stats struct {
	Calls         uint64 // unary calls and streams seen
	Admitted      uint64 // handlers started
	RateLimited   uint64 // refused: the peer's rate (ResourceExhausted)
	LimiterFailed uint64 // refused: the rate limiter failed and its fail policy denied (Unavailable)
	Saturated     uint64 // refused: the spawner refused the handler, or the call ended waiting for room (Unavailable)

	DeadlineExceeded uint64 // handlers that ran out of the WithTimeout budget
	Panics           uint64 // handlers that panicked (Internal)
	StreamMessages   uint64 // streams refused a message over WithMaxStreamMessages
	StreamRate       uint64 // streams refused a message over WithStreamMessageRate
}

// Option configures New.
type Option func(*config) error

type config struct {
	rl          limiter.RateLimiter
	keyFunc     func(ctx context.Context) (string, error)
	spawner     *spawn.Spawner
	budget      time.Duration
	maxMsgs     int64
	msgRate     rate.Limit
	msgBurst    int
	retryAfter  time.Duration
	v6PrefixLen int
}

// WithRateLimit limits the rate of calls and stream starts of each peer
// with rl: the peer's address (IPv4, or the IPv6 /64) is the key, unless
// WithKeyFunc gives another. A *limiter.Keyed is asked with AllowAddr,
// which does not allocate; any other RateLimiter (limiter/redisstore) gets
// "addr:<masked address>". A denied call gets codes.ResourceExhausted with
// RetryInfo set to the Decision's RetryAfter. When rl fails, its
// Decision is applied as is (its fail policy decides); a denial is then
// codes.Unavailable.
func WithRateLimit(rl limiter.RateLimiter) Option {
	return func(c *config) error {
		if rl == nil {
			return errors.New("garrisongrpc: nil RateLimiter")
		}
		c.rl = rl
		return nil
	}
}

// WithKeyFunc keys the rate limit by what f returns (an API key from the
// metadata, an authenticated user) instead of the peer address. A call for
// which f returns an error or an empty key is keyed by its peer address, so
// a client cannot escape its limit by sending a malformed key. The keys f
// returns are the client's to choose: the limiter's table must be bounded
// (limiter.Keyed is).
func WithKeyFunc(f func(ctx context.Context) (string, error)) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("garrisongrpc: nil key func")
		}
		c.keyFunc = f
		return nil
	}
}

// WithSpawner runs every admitted handler as a task of s, so s's limits
// (MaxConcurrent, queue, waiters, rate, overload guard) cap the handlers
// running at once. The interceptor waits for admission as s.Go does, within
// the call's context, and then for the handler to return: a handler never
// outlives its call. A call s refuses gets codes.Unavailable with
// RetryInfo (WithRetryAfter); a handler that panics is recovered by s and
// answered with codes.Internal.
func WithSpawner(s *spawn.Spawner) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("garrisongrpc: nil Spawner")
		}
		c.spawner = s
		return nil
	}
}

// WithTimeout gives every handler at most d (timeout.Run, named by the
// full method name); a shorter deadline sent by the client wins. A handler
// that returns an error after its budget ran out is answered with
// codes.DeadlineExceeded. The handler must honour its context.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("garrisongrpc: timeout %v is not positive", d)
		}
		c.budget = d
		return nil
	}
}

// WithMaxStreamMessages bounds the messages a client may send on one
// stream; RecvMsg past n returns codes.ResourceExhausted, which ends the
// stream when the handler returns it.
func WithMaxStreamMessages(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("garrisongrpc: max stream messages %d is below 1", n)
		}
		c.maxMsgs = int64(n)
		return nil
	}
}

// WithStreamMessageRate bounds the rate at which a client may send on one
// stream to r messages per second with bursts of burst; a message over it
// makes RecvMsg return codes.ResourceExhausted with RetryInfo.
func WithStreamMessageRate(r rate.Limit, burst int) Option {
	return func(c *config) error {
		if r <= 0 || burst < 1 {
			return fmt.Errorf("garrisongrpc: stream message rate %v/s burst %d: want a positive rate and burst", r, burst)
		}
		c.msgRate, c.msgBurst = r, burst
		return nil
	}
}

// WithRetryAfter sets the retry delay sent with a call the spawner refused
// (default DefaultRetryAfter).
func WithRetryAfter(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("garrisongrpc: retry after %v is not positive", d)
		}
		c.retryAfter = d
		return nil
	}
}

// New returns a Guard enforcing the given options. Without options its
// interceptors only count calls. An invalid option returns an error.
func New(opts ...Option) (*Guard, error) {
	g := &Guard{cfg: config{retryAfter: DefaultRetryAfter, v6PrefixLen: 64}}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("garrisongrpc: nil option")
		}
		if err := o(&g.cfg); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Stats returns the Guard's counters, each read atomically.
func (g *Guard) Stats() Stats {
	return Stats{
		Calls:            g.calls.Load(),
		Admitted:         g.admitted.Load(),
		RateLimited:      g.rateLimited.Load(),
		LimiterFailed:    g.limiterFailed.Load(),
		Saturated:        g.saturated.Load(),
		DeadlineExceeded: g.deadline.Load(),
		Panics:           g.panics.Load(),
		StreamMessages:   g.streamMessages.Load(),
		StreamRate:       g.streamRate.Load(),
	}
}

// UnaryServerInterceptor returns the interceptor for unary calls.
func (g *Guard) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := g.admit(ctx); err != nil {
			return nil, err
		}
		var resp any
		err := g.run(ctx, info.FullMethod, func(ctx context.Context) error {
			var err error
			resp, err = handler(ctx, req)
			return err
		})
		return resp, err
	}
}

// StreamServerInterceptor returns the interceptor for streams. A stream is
// admitted like a unary call when it starts, and its handler runs under the
// same spawner and budget; the messages the client sends are bounded by
// WithMaxStreamMessages and WithStreamMessageRate.
func (g *Guard) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := g.admit(ss.Context()); err != nil {
			return err
		}
		return g.run(ss.Context(), info.FullMethod, func(ctx context.Context) error {
			return handler(srv, g.wrap(ctx, ss))
		})
	}
}

// admit counts the call and applies the rate limit.
func (g *Guard) admit(ctx context.Context) error {
	g.calls.Add(1)
	if g.cfg.rl == nil {
		return nil
	}
	d, err := g.decide(ctx)
	if d.Allowed {
		return nil
	}
	if err != nil {
		g.limiterFailed.Add(1)
		return refusal(codes.Unavailable, "garrison: rate limiter unavailable and its fail policy denies", d.RetryAfter, g.cfg.retryAfter)
	}
	g.rateLimited.Add(1)
	return refusal(codes.ResourceExhausted, "garrison: rate limited ("+d.Reason.String()+")", d.RetryAfter, g.cfg.retryAfter)
}

// decide asks the rate limiter about the caller.
func (g *Guard) decide(ctx context.Context) (limiter.Decision, error) {
	if g.cfg.keyFunc != nil {
		if key, err := g.cfg.keyFunc(ctx); err == nil && key != "" {
			return g.cfg.rl.AllowContext(ctx, key)
		}
	}
	addr := peerAddr(ctx)
	if k, ok := g.cfg.rl.(*limiter.Keyed); ok {
		return k.AllowAddr(addr), nil
	}
	key := "addr:"
	if addr.IsValid() {
		bits := 32
		if addr.Is6() {
			bits = g.cfg.v6PrefixLen
		}
		p, err := addr.Prefix(bits)
		if err == nil {
			key += p.Addr().String()
		}
	}
	return g.cfg.rl.AllowContext(ctx, key)
}

// peerAddr returns the peer's IP, unmapped, or the zero Addr if the
// transport has none (a Unix socket, an in-memory listener).
func peerAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	var ip net.IP
	switch a := p.Addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		ap, err := netip.ParseAddrPort(p.Addr.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// refusal builds a status carrying RetryInfo: after, or fallback if after
// is not positive.
func refusal(c codes.Code, msg string, after, fallback time.Duration) error {
	if after <= 0 {
		after = fallback
	}
	st := status.New(c, fmt.Sprintf("%s; retry after %v", msg, after))
	if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// run runs fn under the spawner and the budget, and maps how it ended to
// a status.
func (g *Guard) run(ctx context.Context, method string, fn func(context.Context) error) error {
	call := fn
	if g.cfg.budget > 0 {
		call = func(ctx context.Context) error {
			return timeout.Run(ctx, g.cfg.budget, fn, timeout.Named(method))
		}
	}
	var err error
	if g.cfg.spawner == nil {
		g.admitted.Add(1)
		err = call(ctx)
	} else {
		var refused bool
		err, refused = g.spawn(ctx, call)
		if refused {
			return err
		}
	}
	return g.classify(ctx, err)
}

// spawn runs call as a task of the spawner and waits for it. refused
// reports that the task never ran, and err is then the status to return.
func (g *Guard) spawn(ctx context.Context, call func(context.Context) error) (err error, refused bool) {
	h, err := spawn.Submit(ctx, g.cfg.spawner, func(taskCtx context.Context) (struct{}, error) {
		// The handler needs the call's context (its deadline, metadata
		// and peer) and must also stop if the spawner shuts down, so it
		// gets a child of the call's context that the task's context
		// cancels too.
		hctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		stop := context.AfterFunc(taskCtx, func() { cancel(context.Cause(taskCtx)) })
		defer stop()
		return struct{}{}, call(hctx)
	})
	if err != nil {
		g.saturated.Add(1)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return status.FromContextError(ctxErr).Err(), true
		}
		return refusal(codes.Unavailable, "garrison: server saturated ("+err.Error()+")", 0, g.cfg.retryAfter), true
	}
	g.admitted.Add(1)
	// Wait for the handler even if the call's context ends: it sees that
	// end through its own context, and a handler must not outlive its
	// call (a stream is unusable after the interceptor returns).
	_, err = h.Wait(context.WithoutCancel(ctx))
	return err, false
}

// classify maps a handler's error to what the client should see.
func (g *Guard) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var pe *spawn.PanicError
	if errors.As(err, &pe) {
		g.panics.Add(1)
		// The stack stays on the server (spawn's hooks and logs): a client
		// must not read the server's internals.
		return status.Error(codes.Internal, "garrison: handler panicked")
	}
	var te *timeout.Error
	if errors.As(err, &te) {
		g.deadline.Add(1)
		return status.Error(codes.DeadlineExceeded, te.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return status.FromContextError(err).Err()
	}
	return err
}
