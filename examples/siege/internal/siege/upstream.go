package siege

import (
	"io"
	"net"
	"net/http"
	"sync"
)

// upstream is the payment provider both twins call from /charge. When
// hanging, it accepts every request and answers none until released or
// until the caller goes away, like a provider stuck behind a dead database.
type upstream struct {
	URL     string
	srv     *http.Server
	served  chan struct{}
	release chan struct{}
	once    sync.Once
}

func startUpstream(hang bool) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{URL: "http://" + ln.Addr().String(), served: make(chan struct{}), release: make(chan struct{})}
	u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang {
			select {
			case <-u.release:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "charged\n")
	})}
	go func() {
		defer close(u.served)
		_ = u.srv.Serve(ln)
	}()
	return u, nil
}

// Close answers every hanging request and stops the server.
func (u *upstream) Close() {
	u.once.Do(func() {
		close(u.release)
		_ = u.srv.Close()
		<-u.served
	})
}
