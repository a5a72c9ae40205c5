// Command hardened-server runs the ledger-and-jobs service of package app,
// wired with garrison, until SIGINT or SIGTERM.
//
//	go run ./examples/hardened-server -addr 127.0.0.1:8080
//	curl -s localhost:8080/accounts/alice
//	curl -s -XPOST 'localhost:8080/transfer?from=alice&to=bob&amount=5'
//	curl -s -XPOST 'localhost:8080/jobs?tenant=acme'
//	curl -s localhost:8080/debug/garrison
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
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	upstream := flag.String("upstream", "", "payment provider base URL (default: a built-in stand-in on loopback)")
	upstreamDelay := flag.Duration("upstream-delay", 20*time.Millisecond, "how long the built-in stand-in provider takes to answer")
	grace := flag.Duration("grace", 10*time.Second, "how long shutdown waits for requests and jobs in flight")
	flag.Parse()

	// SIGINT (Ctrl-C) and SIGTERM (what orchestrators send) both start a
	// graceful shutdown; a second signal kills the process the usual way,
	// because stop restores the default behaviour once the first arrived.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, *addr, *upstream, *upstreamDelay, *grace, nil); err != nil {
		log.Fatal(err)
	}
}

// run serves until ctx ends, then shuts down within grace. ready, if not
// nil, is called with the listening address once the service accepts.
func run(ctx context.Context, addr, upstream string, upstreamDelay, grace time.Duration, ready func(net.Addr)) error {
	if upstream == "" {
		provider, err := startProvider(upstreamDelay)
		if err != nil {
			return err
		}
		defer provider.Close()
		upstream = "http://" + provider.Addr
	}

	a, err := app.New(app.Config{
		Upstream:   upstream,
		Job:        work.Job{Size: 64 << 10, Rounds: 40, Wait: time.Second},
		LockPause:  time.Millisecond,
		CheckPause: 500 * time.Microsecond,
	})
	if err != nil {
		return err
	}
	// In a checking build the default handler panics on an inversion; a
	// service would rather log it and keep serving.
	defer lockorder.SetHandler(a.RecordLockOrder)()

	// The listener can only shed what the kernel lets through: say so
	// at start-up if SYN cookies are off, the backlog is short or the
	// file-descriptor limit is low.
	for _, f := range limiter.Preflight() {
		log.Printf("hardened-server: preflight: %v", f)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ln) }()
	log.Printf("hardened-server: listening on http://%s (upstream %s, lockorder checking %v)", ln.Addr(), upstream, lockorder.Enabled())
	if ready != nil {
		ready(ln.Addr())
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Printf("hardened-server: shutting down (grace %v)", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = a.Shutdown(sctx)
	return errors.Join(err, <-served)
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
