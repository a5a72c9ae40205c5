package siege

import (
	"context"
	"fmt"
	"net"

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
	close    func(ctx context.Context) error
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
	s := naive.New(naive.Config{Upstream: upstreamURL, Job: e.job, LockPause: e.lockPause, CheckPause: e.checkPause, H2C: h2c})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	return &target{
		deposits: func() int64 { return s.Usage().Deposits },
		stats:    func() any { return nil },
		timeouts: func() int64 { return 0 },
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
