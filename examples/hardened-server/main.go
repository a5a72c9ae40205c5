// Command hardened-server runs the ledger-and-jobs service of package app,
// wired with garrison, until SIGINT or SIGTERM.
//
//	go run ./examples/hardened-server -addr 127.0.0.1:8080
//	curl -s localhost:8080/accounts/alice
//	curl -s -XPOST 'localhost:8080/transfer?from=alice&to=bob&amount=5'
//	curl -s -XPOST 'localhost:8080/jobs?tenant=acme'
//	curl -s --http2-prior-knowledge localhost:8080/healthz
//	curl -s localhost:6060/debug/garrison     # the admin listener
//
// The public port speaks HTTP/1.1 and HTTP/2 without TLS (h2c, as behind a
// TLS-terminating proxy). The operator's endpoints (/debug/garrison, and
// whatever else is registered on app.AdminMux) are served on a separate
// listener, -admin-addr, bound to loopback by default: they are never
// reachable through the public port. Every limit is a flag (-h lists them
// with their defaults); a negative duration or rate turns that limit off.
//
// Without -upstream it starts a stand-in payment provider on another
// loopback port that answers in 20 ms (-upstream-delay), so POST /charge
// works out of the box; set -upstream-delay 1h to watch the timeouts.
// Build with -race or -tags lockorder to have lock-order inversions
// reported (try GET /audit?account=alice after a transfer).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/garrison-go/garrison/examples/hardened-server/app"
	"github.com/garrison-go/garrison/examples/internal/work"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
)

func main() {
	var o options
	o.bind(flag.CommandLine)
	flag.Parse()

	// SIGINT (Ctrl-C) and SIGTERM (what orchestrators send) both start a
	// graceful shutdown; a second signal kills the process the usual way,
	// because stop restores the default behaviour once the first arrived.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, o, nil); err != nil {
		log.Fatal(err)
	}
}

// run serves until ctx ends, then shuts down within o.grace. ready, if not
// nil, is called with the public and admin addresses (admin nil when
// -admin-addr is empty) once both accept.
func run(ctx context.Context, o options, ready func(public, admin net.Addr)) error {
	if o.upstream == "" {
		provider, err := startProvider(o.upstreamDelay)
		if err != nil {
			return err
		}
		defer provider.Close()
		o.upstream = "http://" + provider.Addr
	}
	cfg := o.cfg
	cfg.Upstream = o.upstream
	cfg.Job = work.Job{Size: 64 << 10, Rounds: 40, Wait: time.Second}
	cfg.LockPause = time.Millisecond
	cfg.CheckPause = 500 * time.Microsecond
	a, err := app.New(cfg)
	if err != nil {
		return err
	}
	// In a checking build the default handler panics on an inversion; a
	// service would rather log it and keep serving.
	defer lockorder.SetHandler(a.RecordLockOrder)()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return errors.Join(err, a.Shutdown(ctx))
	}
	// a.Serve logs the limiter's preflight findings: what the kernel
	// settings (SYN cookies, backlogs, file descriptors) leave open.
	admin, err := startAdmin(o.adminAddr, a.AdminMux())
	if err != nil {
		_ = ln.Close()
		return errors.Join(err, a.Shutdown(ctx))
	}
	defer admin.Close()
	served := make(chan error, 1)
	go func() { served <- a.Serve(ln) }()
	log.Printf("hardened-server: listening on http://%s (HTTP/2 cleartext %v, upstream %s, lockorder checking %v)",
		ln.Addr(), !cfg.DisableHTTP2, o.upstream, lockorder.Enabled())
	if admin.ln != nil {
		log.Printf("hardened-server: admin endpoints on http://%s/debug/garrison", admin.ln.Addr())
	}
	if ready != nil {
		ready(ln.Addr(), admin.addr())
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Printf("hardened-server: shutting down (grace %v)", o.grace)
	sctx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	err = a.Shutdown(sctx)
	return errors.Join(err, <-served)
}

// adminServer serves the operator's endpoints on their own listener. It is
// plain HTTP/1.1 with the hardened timeouts; it has no connection limits
// of its own because only loopback (or whatever -admin-addr names) can
// reach it.
type adminServer struct {
	ln   net.Listener // nil: disabled
	srv  *http.Server
	done chan struct{}
}

func startAdmin(addr string, h http.Handler) (*adminServer, error) {
	if addr == "" {
		return &adminServer{}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	s := &adminServer{ln: ln, srv: limiter.HardenServer(&http.Server{Handler: h}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *adminServer) addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the admin endpoints at once: nothing there is worth waiting
// for at shutdown.
func (s *adminServer) Close() {
	if s.ln == nil {
		return
	}
	_ = s.srv.Close()
	<-s.done
}

// provider is a stand-in for the payment provider.
type provider struct {
	Addr string
	srv  *http.Server
}

func startProvider(delay time.Duration) (*provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &provider{Addr: ln.Addr().String()}
	p.srv = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if work.Pause(r.Context(), delay) == nil {
				_, _ = io.WriteString(w, "charged\n")
			}
		}),
	}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *provider) Close() { _ = p.srv.Close() }
