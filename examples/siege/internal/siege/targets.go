package siege

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/garrison-go/garrison/examples/hardened-server/app"
	"github.com/garrison-go/garrison/examples/siege/internal/naive"
)

// target is one running twin.
type target struct {
	side string
	url  string
	addr string
	// deposits is the twin's own count of recorded deposits.
	deposits func() int64
	// stats is the hardened twin's /debug/garrison snapshot.
	stats func() any
	// timeouts counts upstream calls that ended in an attributed timeout.
	timeouts func() int64
	// openConns counts connections the twin's process accepted and has
	// not closed.
	openConns func() int64
	close     func(ctx context.Context) error
}

// targetConfig adjusts a twin for one scenario.
type targetConfig struct {
	hardened func(*app.Config) // nil: the siege's usual configuration
	naiveH2C bool              // the naive twin also serves cleartext HTTP/2
}

func (e *env) start(side, upstreamURL string, tc targetConfig) (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var t *target
	switch side {
	case "naive":
		t = e.startNaive(ln, upstreamURL, tc.naiveH2C)
	case "hardened":
		t, err = e.startHardened(ln, upstreamURL, tc.hardened)
	default:
		err = fmt.Errorf("unknown side %q", side)
	}
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	t.side = side
	t.addr = ln.Addr().String()
	t.url = "http://" + t.addr
	return t, nil
}

func (e *env) startNaive(ln net.Listener, upstreamURL string, h2c bool) *target {
	k := e.p.keys
	s := naive.New(naive.Config{Upstream: upstreamURL, Job: e.job, LockPause: e.lockPause, CheckPause: e.checkPause, H2C: h2c,
		LoginBurst: k.loginBurst, LoginEvery: k.loginEvery, LoginUsers: k.loginUsers})
	// Counting only: the naive twin's listener is net.Listen's, as is.
	cl := &countingListener{Listener: ln}
	served := make(chan error, 1)
	go func() { served <- s.Serve(cl) }()
	return &target{
		deposits:  func() int64 { return s.Usage().Deposits },
		stats:     func() any { return nil },
		timeouts:  func() int64 { return 0 },
		openConns: cl.open.Load,
		close: func(ctx context.Context) error {
			err := s.Close(ctx)
			select {
			case <-served:
			case <-ctx.Done():
			}
			return err
		},
	}
}

// countingListener counts the connections it accepted and that are not
// closed yet. It changes nothing else: Accept and the connections behave
// as the inner ones (the zero-copy ReadFrom of *net.TCPConn included).
type countingListener struct {
	net.Listener
	open atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

func (c *countedConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(c.Conn, r)
}

// CloseWrite keeps net/http's graceful close (half-close, then drain).
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
