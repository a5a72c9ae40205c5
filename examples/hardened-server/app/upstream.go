package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/garrison-go/garrison/timeout"
)

// chargeOp names the upstream call in timeout errors and watchdog reports.
const chargeOp = "upstream.charge"

// upstream calls the payment provider.
//
// Each call runs under timeout.Run: fn runs inline (no goroutine to leak)
// with a deadline, and on expiry the error is a *timeout.Error naming the
// operation, its budget and the time spent, instead of a bare "context
// deadline exceeded" that says nothing about which call ran out of time.
//
// The watchdog is the second line: it sees every call in flight, and one
// still running after StallAfter (say, a body read that ignores its
// context) is reported with the stack that started it and cancelled.
type upstream struct {
	base     string
	budget   time.Duration
	client   *http.Client
	watchdog *timeout.Watchdog

	calls       atomic.Int64
	timeouts    atomic.Int64
	lastTimeout atomic.Pointer[string]
}

func newUpstream(cfg Config) (*upstream, error) {
	u := &upstream{
		base:   cfg.Upstream,
		budget: cfg.UpstreamTimeout,
		// A private Transport so Shutdown can close its idle connections.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	var err error
	u.watchdog, err = timeout.NewWatchdog(
		timeout.WithStallAfter(cfg.StallAfter),
		timeout.WithCancelStalled(true),
		timeout.WithStacks(true),
		timeout.WithOnStuck(func(s timeout.Stuck) {
			cfg.Logger.Printf("watchdog: %s stalled for %v\n%s", s.Name, s.Age, s.Stack)
		}),
	)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// charge calls the provider once within the budget.
func (u *upstream) charge(ctx context.Context) error {
	u.calls.Add(1)
	ctx, tok := u.watchdog.Track(ctx, chargeOp)
	defer tok.Done()
	err := timeout.Run(ctx, u.budget, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base+"/charge", nil)
		if err != nil {
			return err
		}
		resp, err := u.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: provider answered %s", chargeOp, resp.Status)
		}
		return err
	}, timeout.Named(chargeOp))
	var te *timeout.Error
	if errors.As(err, &te) {
		u.timeouts.Add(1)
		msg := te.Error()
		u.lastTimeout.Store(&msg)
	}
	return err
}

func (u *upstream) close() error {
	u.client.CloseIdleConnections()
	return u.watchdog.Close()
}

func (a *App) charge(w http.ResponseWriter, r *http.Request) {
	if err := a.upstream.charge(r.Context()); err != nil {
		httpError(w, errorStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}
