package limiter_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
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
