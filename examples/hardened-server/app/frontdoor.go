package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/limiter"
)

// The front door: what stands between the public port and the handlers.
// One limiter.Listener, wired into the http.Server with Listener.Harden,
// because each side sees what the other cannot:
//
//   - The listener sees connections before net/http does. At its cap it
//     preempts a held connection that is not serving a request (idle
//     keep-alive, or no complete request yet) from the source holding the
//     most, instead of refusing the newcomer: a botnet that fills every
//     slot loses its slots to whoever comes next. It caps each source
//     address, closes connections that send nothing (a first-byte timeout
//     that shrinks as the listener fills) and, on Linux, leaves a
//     connection in the kernel until its first byte (TCP_DEFER_ACCEPT).
//   - net/http knows which connection is reading a request, running a
//     handler or idle between requests. Harden passes that to the
//     listener (ConnState): the read-rate rule applies only while a
//     request head is read, never to an idle keep-alive, which only
//     IdleTimeout closes. It also bounds, per connection, how fast
//     requests start and end cancelled (HTTP/2 rapid reset), and fills
//     the http.Server's timeouts and HTTP/2 limits, all unlimited in a
//     zero http.Server.

// newServer builds the public http.Server: HTTP/1.1 and, unless
// DisableHTTP2, HTTP/2 without TLS (h2c with prior knowledge). Serve
// hardens it and wires it to the listener.
func (a *App) newServer() *http.Server {
	srv := &http.Server{
		Handler:           a.Handler(),
		ErrorLog:          a.cfg.Logger,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		ReadTimeout:       a.cfg.ReadTimeout,
		WriteTimeout:      a.cfg.WriteTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		MaxHeaderBytes:    a.cfg.MaxHeaderBytes,
	}
	if !a.cfg.DisableHTTP2 {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
		if a.cfg.H2MaxStreams > 0 {
			srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: a.cfg.H2MaxStreams}
		}
	}
	return srv
}

var overflowPolicies = map[string]limiter.OverflowPolicy{
	"preempt":      limiter.Preempt,
	"shed":         limiter.Shed,
	"backpressure": limiter.Backpressure,
}

// listenerOptions turns the Config into the listener's options.
func (a *App) listenerOptions() ([]limiter.ListenerOption, error) {
	c := &a.cfg
	policy, ok := overflowPolicies[c.Overflow]
	if !ok {
		return nil, fmt.Errorf("app: Overflow %q: want preempt, shed or backpressure", c.Overflow)
	}
	opts := []limiter.ListenerOption{
		limiter.WithMaxConns(c.MaxConns),
		limiter.WithOverflow(policy),
		limiter.WithMaxConnsPerIP(c.MaxConnsPerIP),
		limiter.WithMaxTrackedIPs(4096),
	}
	if c.FirstByteTimeout < 0 {
		opts = append(opts, limiter.WithoutFirstByteTimeout())
	} else {
		opts = append(opts, limiter.WithFirstByteTimeout(c.FirstByteTimeout))
		if c.AdaptiveFloor > 0 && c.AdaptiveFloor < 1 {
			opts = append(opts, limiter.WithAdaptiveTimeouts(c.AdaptiveFloor))
		}
	}
	switch {
	case c.TarpitMax < 0:
		opts = append(opts, limiter.WithoutTarpit())
	case c.TarpitMax > 0 || c.TarpitHold > 0:
		n, hold := c.TarpitMax, c.TarpitHold
		if n == 0 {
			n = limiter.DefaultTarpitPerConn * c.MaxConns
		}
		if hold <= 0 {
			hold = limiter.DefaultTarpitHold
		}
		opts = append(opts, limiter.WithTarpit(n, hold))
	}
	// TCP_DEFER_ACCEPT exists on Linux only; elsewhere the first-byte
	// timeout does the same job one step later, in the process.
	if c.DeferAccept > 0 && runtime.GOOS == "linux" {
		opts = append(opts, limiter.WithDeferAccept(c.DeferAccept))
	}
	if c.MinReadRate > 0 {
		opts = append(opts, limiter.WithMinReadRate(c.MinReadRate, time.Second))
	}
	if c.MinWriteRate > 0 {
		opts = append(opts, limiter.WithMinWriteRate(c.MinWriteRate, c.MinWriteWindow))
	}
	if c.StreamRate != 0 {
		opts = append(opts, limiter.WithStreamRate(limitOf(c.StreamRate), max(c.StreamBurst, 1)))
	}
	if c.ResetRate != 0 {
		opts = append(opts, limiter.WithResetRate(limitOf(c.ResetRate), max(c.ResetBurst, 1)))
	}
	if c.RejectLogEvery > 0 {
		logger := slog.New(slog.NewTextHandler(c.Logger.Writer(), nil))
		opts = append(opts, limiter.WithOnRejectConn(limiter.LogRejections(logger, c.RejectLogEvery)))
	}
	return opts, nil
}

// limitOf reads a negative rate as "no limit".
func limitOf(r float64) rate.Limit {
	if r < 0 {
		return rate.Inf
	}
	return rate.Limit(r)
}

// Serve accepts connections on ln until Shutdown, through a
// limiter.Listener built from the Config and wired into the http.Server.
// Like http.Server.Serve it closes ln when it returns. Before serving it
// logs what the kernel settings leave unprotected (limiter Preflight).
func (a *App) Serve(ln net.Listener) error {
	opts, err := a.listenerOptions()
	if err != nil {
		_ = ln.Close()
		return err
	}
	gl, err := limiter.NewListener(ln, opts...)
	if err != nil {
		_ = ln.Close()
		return err
	}
	for _, f := range gl.Preflight() {
		a.cfg.Logger.Printf("preflight: %v", f)
	}
	a.mu.Lock()
	a.ln = gl
	a.mu.Unlock()
	// Harden modifies a.srv in place: Shutdown stops the same server.
	if _, err := gl.Harden(a.srv); err != nil {
		_ = gl.Close()
		return err
	}
	if err := a.srv.Serve(gl); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
