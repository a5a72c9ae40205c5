package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/garrison-go/garrison/spawn"
)

// newJobs builds the spawner that runs every background job. A bare go
// statement per request is an unbounded queue with the scheduler as its
// only limit; the spawner bounds what runs (MaxJobs), what waits (JobQueue),
// what one tenant may hold (JobsPerTenant, in a table of at most 1024
// tenants), and how long a job lives (JobTimeout).
//
// WithMaxWaiters(0): a request never parks waiting for room. When the
// spawner is full the answer is an immediate 503, which costs the attacker
// a round trip and the service almost nothing; a parked handler would cost
// the service a goroutine per attacker request, the very thing we bound.
func newJobs(cfg Config) (*spawn.Spawner, error) {
	return spawn.New(
		spawn.WithMaxConcurrent(cfg.MaxJobs),
		spawn.WithQueue(cfg.JobQueue),
		spawn.WithMaxWaiters(0),
		spawn.WithPerKey(cfg.JobsPerTenant, 1024),
		spawn.WithTaskTimeout(cfg.JobTimeout),
		spawn.WithHooks(spawn.Hooks{
			OnPanic: func(err *spawn.PanicError) {
				cfg.Logger.Printf("job panicked: %v\n%s", err.Value, err.Stack)
			},
		}),
	)
}

// startJob admits a job for the caller's tenant or refuses it with a reason.
// The tenant comes from the query for the demo; a real service takes it
// from the authenticated identity, never from something the client picks
// freely, or per-tenant caps are one query parameter away from useless.
func (a *App) startJob(w http.ResponseWriter, r *http.Request) {
	tenant := r.URL.Query().Get("tenant")
	if tenant == "" {
		httpError(w, http.StatusBadRequest, errors.New("tenant is required"))
		return
	}
	// GoKey's ctx bounds the wait for room (none here, see newJobs) and
	// the time the job may sit in the queue: a queued job whose ctx is done
	// is dropped. The job outlives this request (the client gets 202 and
	// leaves), so it must not be r.Context(), which ends when the handler
	// returns. WithoutCancel keeps the request's values and drops its end.
	// The job's own ctx comes from the spawner: JobTimeout, or Shutdown.
	err := a.jobs.GoKey(context.WithoutCancel(r.Context()), tenant, a.cfg.Job.Run)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusAccepted)
	case errors.Is(err, spawn.ErrKeyLimit), errors.Is(err, spawn.ErrRateLimited):
		httpError(w, http.StatusTooManyRequests, fmt.Errorf("tenant %q: %w", tenant, err))
	default:
		// Saturated (every worker busy and the queue full), overloaded,
		// or shutting down.
		httpError(w, http.StatusServiceUnavailable, err)
	}
}
