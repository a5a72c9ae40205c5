// Command agentcheck is one backend instance that tells HAProxy how loaded
// it is, the wiring behind the threat model's "load balancers to distribute
// incoming traffic across multiple instances": a balancer that only learns
// of overload from failed requests learns too late.
//
// It serves GET / through an adaptive concurrency limit (limiter's
// AdaptiveConcurrencyMiddleware) in front of a simulated dependency with
// -capacity slots of -service latency each, and answers HAProxy's
// agent-check on -agent with a weight that falls as the limit fills and
// "drain" when it is overloaded (limiter.Readiness). GET /ready is the same
// state for HTTP health checks, GET /stats its counters as JSON.
//
//	go run ./examples/agentcheck -addr 127.0.0.1:9001 -agent 127.0.0.1:9101
//
// with, in haproxy.cfg:
//
//	server a 127.0.0.1:9001 check agent-check agent-addr 127.0.0.1 agent-port 9101 agent-inter 500ms
//
// .ci/checks/haproxy.sh runs two instances, one ten times slower, behind a
// real HAProxy and checks that traffic moves to the fast one and that no
// request is lost.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/garrison-go/garrison/limiter"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agentcheck:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:9001", "HTTP listen address")
	agentAddr := flag.String("agent", "127.0.0.1:9101", "HAProxy agent-check listen address (keep it on loopback or a management network)")
	service := flag.Duration("service", 2*time.Millisecond, "latency of one call to the simulated dependency")
	capacity := flag.Int("capacity", 8, "calls the simulated dependency serves at once")
	maxLimit := flag.Int("max-limit", 256, "upper bound of the adaptive concurrency limit")
	minLimit := flag.Int("min-limit", 4, "lower bound of the adaptive concurrency limit")
	maxWait := flag.Duration("max-wait", 20*time.Millisecond, "how long a request over the limit waits for a slot before 503")
	flag.Parse()
	if *capacity < 1 || *service <= 0 {
		return errors.New("-capacity and -service must be positive")
	}

	adaptive, err := limiter.NewAdaptiveLimiter(*minLimit, *maxLimit, limiter.AdaptiveMaxWait(*maxWait))
	if err != nil {
		return err
	}
	ready, err := limiter.NewReadiness([]limiter.LoadProbe{{Name: "adaptive-limit", Load: adaptive.Load}})
	if err != nil {
		return err
	}

	var served, rejected atomic.Uint64
	slots := make(chan struct{}, *capacity)
	work := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		time.Sleep(*service)
		<-slots
		served.Add(1)
		fmt.Fprintln(w, "ok")
	})
	limited := limiter.AdaptiveConcurrencyMiddleware(adaptive,
		limiter.WithRetryAfter(time.Second),
		limiter.WithOnReject(func(*http.Request, limiter.Decision, error) { rejected.Add(1) }))(work)

	mux := http.NewServeMux()
	mux.Handle("GET /{$}", limited)
	mux.Handle("GET /ready", ready.Handler())
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"served":    served.Load(),
			"rejected":  rejected.Load(),
			"adaptive":  adaptive.Stats(),
			"readiness": ready.Stats(),
		})
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	agentLn, err := net.Listen("tcp", *agentAddr)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	limiter.HardenServer(srv)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	agentDone := make(chan error, 1)
	go func() { agentDone <- ready.ServeAgent(ctx, agentLn) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	slog.Info("agentcheck serving", "addr", ln.Addr().String(), "agent", agentLn.Addr().String(),
		"service", service.String(), "capacity", *capacity)

	select {
	case <-ctx.Done():
	case err := <-serveDone:
		stop()
		<-agentDone
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	<-serveDone
	if aerr := <-agentDone; err == nil {
		err = aerr
	}
	slog.Info("agentcheck stopped", "served", served.Load(), "rejected", rejected.Load())
	return err
}
