package siege

import (
	"context"
	"net"
	"time"

	"github.com/garrison-go/garrison/examples/hardened-server/app"
)

func (e *env) startHardened(ln net.Listener, upstreamURL string, tweak func(*app.Config)) (*target, error) {
	cfg := app.Config{
		Upstream:   upstreamURL,
		Job:        e.job,
		LockPause:  e.lockPause,
		CheckPause: e.checkPause,
		// The provider is on loopback: a charge that has not answered in
		// 100 ms is not going to. This leaves most of a legitimate user's
		// 1 s patience for a machine as loaded as a CI runner.
		UpstreamTimeout: 100 * time.Millisecond,
		Logger:          e.logger,
		LoginBurst:      e.p.keys.loginBurst,
		LoginEvery:      e.p.keys.loginEvery,
		LoginUsers:      e.p.keys.loginUsers,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := app.New(cfg)
	if err != nil {
		return nil, err
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ln) }()
	return &target{
		deposits: func() int64 { return a.Usage().Deposits },
		stats:    func() any { return a.Stats() },
		timeouts: a.UpstreamTimeouts,
		openConns: func() int64 {
			if st := a.Stats(); st.Listener != nil {
				return st.Listener.Active
			}
			return 0
		},
		close: func(ctx context.Context) error {
			err := a.Shutdown(ctx)
			select {
			case serr := <-served:
				if err == nil {
					err = serr
				}
			case <-ctx.Done():
			}
			return err
		},
	}, nil
}
