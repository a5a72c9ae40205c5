package limiter

import (
	"context"
	"net"
	"net/http"
)

// Harden applies HardenServer to srv and wires it to l, so that l sees
// each connection's HTTP state and each request:
//
//   - ConnState (chained before srv's own) tells l which connections are
//     new, idle between requests or serving one: only the first two are
//     preemptable (policy Preempt), and the minimum read rate applies only
//     while a request head is being read, never to an idle keep-alive or
//     while a handler runs;
//   - ConnContext (chained) puts l's connection into each request's
//     context, and Handler is wrapped so that a connection starting
//     requests faster than WithStreamRate, or having them cancelled faster
//     than WithResetRate (HTTP/2 rapid reset), is cut;
//   - with WithMinWriteRate, a zero WriteTimeout is left at zero (-1 kept
//     as is) instead of HardenWriteTimeout: the rate governs downloads.
//
// It modifies srv in place and returns it; a nil srv gets a new server.
// Call it once, before the server starts, and serve l with it. A nil l
// returns an error. Connections of other listeners served by srv pass
// through untouched.
func (l *Listener) Harden(srv *http.Server) (*http.Server, error) {
	if l == nil {
		return nil, invalidf("Harden: nil Listener")
	}
	if srv == nil {
		srv = &http.Server{}
	}
	if l.cfg.minWriteRate > 0 && srv.WriteTimeout == 0 {
		srv.WriteTimeout = -1
	}
	HardenServer(srv)
	if srv.WriteTimeout == -1 && l.cfg.minWriteRate > 0 {
		srv.WriteTimeout = 0
	}
	prevState := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		l.ConnState(c, s)
		if prevState != nil {
			prevState(c, s)
		}
	}
	prevCtx := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prevCtx != nil {
			ctx = prevCtx(ctx, c)
		}
		return l.ConnContext(ctx, c)
	}
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = l.GuardRequests(h)
	return srv, nil
}

// own returns l's connection under c, unwrapping *tls.Conn and any other
// wrapper with a NetConn method, or nil when c did not come from l.
func (l *Listener) own(c net.Conn) *conn {
	for range 8 { // wrappers nest a few deep at most
		switch v := c.(type) {
		case *conn:
			if v.l == l {
				return v
			}
			return nil
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// ConnState is an http.Server.ConnState hook (Harden installs it): it
// tracks each connection's HTTP state so that preemption and the read
// guard know which connections are serving. It ignores connections that
// did not come from l, and a nil l.
func (l *Listener) ConnState(c net.Conn, s http.ConnState) {
	if l == nil {
		return
	}
	w := l.own(c)
	if w == nil {
		return
	}
	switch s {
	case http.StateNew:
		w.http.Store(true)
	case http.StateActive, http.StateHijacked:
		w.setState(stActive)
	case http.StateIdle:
		if w.g != nil {
			// The next request has not begun: the read guard waits for
			// its first byte (the idle wait is IdleTimeout's).
			w.g.mu.Lock()
			w.g.reqByte = false
			w.g.mu.Unlock()
		}
		w.setState(stIdle)
	}
	// StateClosed: net/http closes the connection, and Close releases it.
}

type connKey struct{}

// ConnContext is an http.Server.ConnContext hook (Harden installs it): it
// records l's connection in ctx for GuardRequests.
func (l *Listener) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if l == nil {
		return ctx
	}
	if w := l.own(c); w != nil {
		return context.WithValue(ctx, connKey{}, w)
	}
	return ctx
}

// GuardRequests wraps next (Harden does it) to bound, per connection, how
// fast HTTP/2 streams start (WithStreamRate) and how fast requests end
// cancelled by the client (WithResetRate): over either, the connection is
// cut with a reset, which ends every stream on it. An HTTP/2 stream whose
// context is already cancelled when it reaches the wrapper is counted as a
// reset and not served: under rapid reset most streams are cancelled
// before their handler runs, and skipping them is most of the saving. Requests of
// connections not from l (no ConnContext) pass through. A nil next gets
// http.DefaultServeMux.
func (l *Listener) GuardRequests(next http.Handler) http.Handler {
	if next == nil {
		next = http.DefaultServeMux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(*conn)
		if l == nil || c == nil || c.l != l {
			next.ServeHTTP(w, r)
			return
		}
		// HTTP/1 cannot multiplex: each request costs its client a round
		// trip, and a fast keep-alive client is legitimate (a request flood
		// is Keyed's business). Only HTTP/2 streams are rate-bounded here.
		if r.ProtoMajor == 2 && !c.h2.Load() {
			c.h2.Store(true)
		}
		if r.ProtoMajor == 2 && !allowOn(l.streams, &c.streamTAT) {
			c.cut(StreamRate)
			return
		}
		// An HTTP/2 stream cancelled before its handler starts is skipped:
		// the client withdrew it. An HTTP/1 request always runs: its
		// context is also cancelled when a client that sent a whole
		// request hangs up, and the request may still matter.
		if r.ProtoMajor != 2 || r.Context().Err() == nil {
			next.ServeHTTP(w, r)
		}
		if r.Context().Err() != nil && !allowOn(l.resets, &c.resetTAT) {
			c.cut(StreamResets)
		}
	})
}
