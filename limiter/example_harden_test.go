package limiter_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/garrison-go/garrison/limiter"
)

// A Listener that preempts idle connections for new ones, wired to an
// http.Server so that it knows which connections are serving requests.
func ExampleListener_Harden() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	l, err := limiter.NewListener(ln,
		limiter.WithMaxConns(512),
		limiter.WithOverflow(limiter.Preempt),
		limiter.WithMaxConnsPerIP(64),
		limiter.WithFirstByteTimeout(5*time.Second),
		limiter.WithMinReadRate(256, time.Second), // only while a request head is read
		limiter.WithMinWriteRate(1024, 10*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := l.Harden(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})})
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	fmt.Println(string(body), err)
	fmt.Println("HTTP/2 streams per connection:", srv.HTTP2.MaxConcurrentStreams)
	fmt.Println(srv.Close(), <-done)
	// Output:
	// hello <nil>
	// HTTP/2 streams per connection: 100
	// <nil> http: Server closed
}

// LogRejections turns the Listener's per-connection hook into at most one
// log line per reason per interval, however hard the flood.
func ExampleLogRejections() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // stable output for the example
			}
			return a
		},
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	l, err := limiter.NewListener(ln, limiter.WithOverflow(limiter.Preempt),
		limiter.WithOnRejectConn(limiter.LogRejections(logger, time.Minute)))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Close())
	hook := limiter.LogRejections(logger, time.Minute)
	for range 1000 { // a flood: one line, then silence until the minute is up
		hook(netip.MustParseAddr("192.0.2.1"), limiter.Preempted)
	}
	// Output:
	// <nil>
	// level=WARN msg="limiter: connections closed" reason=preempted count=1 last_source=192.0.2.1
}
