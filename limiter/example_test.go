package limiter_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/garrison-go/garrison/limiter"
	"golang.org/x/time/rate"
)

func ExampleNewListener() {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	refused := make(chan limiter.Reason, 1)
	l, err := limiter.NewListener(inner,
		limiter.WithMaxConns(1000),
		limiter.WithMaxConnsPerIP(1),
		limiter.WithFirstByteTimeout(5*time.Second),
		limiter.WithOnRejectConn(func(_ netip.Addr, why limiter.Reason) { refused <- why }))
	if err != nil {
		panic(err)
	}
	accepted := make(chan net.Conn)
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept() // returns limiter.ErrClosed after Close
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	first, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer first.Close()
	c := <-accepted
	defer c.Close()

	// A second connection from the same address is over its limit: Accept
	// refuses it and goes on to the next client. Its source is at its cap,
	// so it is held open and unread (the tarpit) rather than reset: a
	// flooder gets no signal to redial.
	second, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer second.Close()
	fmt.Println("second refused:", <-refused)
	fmt.Println("held:", l.Stats().Tarpitted)

	// Close resets what the tarpit holds.
	l.Close()
	<-accepted
	_, err = second.Read(make([]byte, 1))
	fmt.Println("second closed:", err != nil)
	// Output:
	// second refused: ip-conns
	// held: 1
	// second closed: true
}

func ExampleNewKeyed() {
	// Each key may make 1 request per second, in bursts of up to 3.
	k, err := limiter.NewKeyed(1, 3)
	if err != nil {
		panic(err)
	}
	for range 4 {
		d := k.Allow("user-42")
		fmt.Println(d.Allowed, d.Remaining, d.RetryAfter.Round(100*time.Millisecond))
	}
	fmt.Println(k.Allow("user-7").Allowed) // another key has its own bucket
	// Output:
	// true 2 0s
	// true 1 0s
	// true 0 0s
	// false 0 1s
	// true
}

func ExampleMiddleware() {
	perClient, err := limiter.NewKeyed(rate.Every(time.Minute), 2)
	if err != nil {
		panic(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })
	srv := httptest.NewServer(limiter.Middleware(perClient)(hello))
	defer srv.Close()

	for range 3 {
		resp, err := http.Get(srv.URL)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Printf("%d RateLimit: %s Retry-After: %q\n", resp.StatusCode, resp.Header.Get("RateLimit"), resp.Header.Get("Retry-After"))
	}
	// Output:
	// 200 RateLimit: "default";r=1;t=60 Retry-After: ""
	// 200 RateLimit: "default";r=0;t=120 Retry-After: ""
	// 429 RateLimit: "default";r=0;t=60 Retry-After: "60"
}

func ExampleHardenServer() {
	srv := limiter.HardenServer(&http.Server{Addr: ":8080", WriteTimeout: time.Minute})
	fmt.Println(srv.ReadHeaderTimeout, srv.WriteTimeout, srv.MaxHeaderBytes)
	// Output: 5s 1m0s 65536
}

func ExampleKeyed_Reset() {
	// A login limit: 5 attempts, then one per 12 seconds, per user name.
	logins, err := limiter.NewKeyed(rate.Every(12*time.Second), 5)
	if err != nil {
		panic(err)
	}
	for range 5 {
		logins.Allow("alice") // five failed passwords
	}
	fmt.Println("sixth attempt allowed:", logins.Allow("alice").Allowed)
	// The password was right after all: earlier failures stop counting.
	logins.Reset("alice")
	fmt.Println("after Reset:", logins.Allow("alice").Remaining, "attempts left")
	// Output:
	// sixth attempt allowed: false
	// after Reset: 4 attempts left
}

func ExampleProblemJSONRejection() {
	perClient, err := limiter.NewKeyed(rate.Every(time.Minute), 1)
	if err != nil {
		panic(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })
	h := limiter.Middleware(perClient,
		limiter.WithPolicyName("api"),
		limiter.WithRejectHandler(limiter.ProblemJSONRejection))(hello)
	for range 2 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("Content-Type"), w.Header().Values("RateLimit"))
		if w.Code != http.StatusOK {
			fmt.Print(w.Body.String())
		}
	}
	// Output:
	// 200 text/plain; charset=utf-8 ["api";r=0;t=60]
	// 429 application/problem+json ["api";r=0;t=60]
	// {"type":"about:blank","title":"Too Many Requests","status":429,"detail":"rejected (request-rate); retry after 60 s","reason":"request-rate","retry_after":60}
}
