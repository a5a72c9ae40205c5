package limiter_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/garrison-go/garrison/limiter"
)

// An adaptive concurrency limit in front of a handler: the limit moves
// between 4 and 512 with the latency it measures.
func ExampleNewAdaptiveLimiter() {
	adaptive, err := limiter.NewAdaptiveLimiter(4, 512)
	if err != nil {
		log.Fatal(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	h := limiter.AdaptiveConcurrencyMiddleware(adaptive)(hello)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	st := adaptive.Stats()
	fmt.Println(rec.Code, st.Algorithm, st.Limit)
	// Output: 200 gradient2 4
}

// Requests are marked by route and by a header that only the internal
// gateway may set; under overload sheddable requests go first.
func ExampleCriticalityMiddleware() {
	gateway := netip.MustParsePrefix("10.0.0.0/8")
	fromHeader := limiter.CriticalityFromHeader("X-Criticality", limiter.Normal, gateway)
	classify := func(r *http.Request) limiter.Criticality {
		if r.URL.Path == "/prefetch" {
			return limiter.Sheddable
		}
		return fromHeader(r)
	}
	show := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.URL.Path, limiter.CriticalityFrom(r.Context()))
	})
	h := limiter.CriticalityMiddleware(classify)(show)

	for _, path := range []string{"/prefetch", "/checkout"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "10.1.2.3:4000"
		req.Header.Set("X-Criticality", "critical")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	// Output:
	// /prefetch sheddable
	// /checkout critical
}

// Readiness over the adaptive limit: an HTTP readiness probe, and an
// HAProxy agent-check on a loopback port.
func ExampleNewReadiness() {
	adaptive, err := limiter.NewAdaptiveLimiter(4, 512)
	if err != nil {
		log.Fatal(err)
	}
	ready, err := limiter.NewReadiness([]limiter.LoadProbe{{Name: "adaptive-limit", Load: adaptive.Load}})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ready", ready.Handler())

	agent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ready.ServeAgent(ctx, agent) }()

	c, err := net.Dial("tcp", agent.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	line, err := io.ReadAll(c) // the agent closes after one line
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("agent says %q\n", line)

	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output: agent says "ready 100%\n"
}
