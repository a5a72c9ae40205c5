package app

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/garrison-go/garrison/limiter"
)

// The front door: what stands between the public port and the handlers.
// Two layers, because each sees what the other cannot:
//
//   - limiter.Listener sees connections before net/http does: it caps them
//     globally and per source address, and closes the ones that send
//     nothing (FirstByteTimeout) or trickle a request (MinReadRate).
//   - limiter.HardenServer fills the http.Server's timeouts, header limit
//     and HTTP/2 limits, which are all unlimited in a zero http.Server:
//     without them a client that sends headers one byte a minute holds its
//     goroutine forever.

// newServer builds the public http.Server: HTTP/1.1 and, unless
// DisableHTTP2, HTTP/2 without TLS (h2c with prior knowledge).
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
	return limiter.HardenServer(srv)
}

// listenerOptions turns the Config into the listener's options. Shed, not
// Backpressure: a public service answers a full house with an immediate
// refusal rather than a queue the attacker fills.
func (a *App) listenerOptions() []limiter.ListenerOption {
	opts := []limiter.ListenerOption{
		limiter.WithMaxConns(a.cfg.MaxConns),
		limiter.WithMaxConnsPerIP(a.cfg.MaxConnsPerIP),
		limiter.WithOverflow(limiter.Shed),
		limiter.WithMaxTrackedIPs(4096),
	}
	if a.cfg.FirstByteTimeout < 0 {
		opts = append(opts, limiter.WithoutFirstByteTimeout())
	} else {
		opts = append(opts, limiter.WithFirstByteTimeout(a.cfg.FirstByteTimeout))
	}
	if a.cfg.MinReadRate > 0 {
		opts = append(opts, limiter.WithMinReadRate(a.cfg.MinReadRate, time.Second))
	}
	return opts
}

// Serve accepts connections on ln until Shutdown, through a
// limiter.Listener built from the Config. Like http.Server.Serve it closes
// ln when it returns.
func (a *App) Serve(ln net.Listener) error {
	gl, err := limiter.NewListener(ln, a.listenerOptions()...)
	if err != nil {
		_ = ln.Close()
		return err
	}
	a.mu.Lock()
	a.ln = gl
	a.mu.Unlock()
	if err := a.srv.Serve(gl); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
