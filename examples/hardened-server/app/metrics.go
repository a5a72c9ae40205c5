package app

import (
	"net/http"

	"github.com/garrison-go/garrison/internal/obs"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
)

// middlewareMetrics are the service's own counts of the requests its two
// middlewares refused, labelled with the limiter.Reason strings.
var middlewareMetrics = []obs.Metric[RateLimitStats]{{
	Subsystem: "middleware", Name: "requests_rejected", Kind: obs.Counter, Label: "reason",
	Help: "Requests refused by the rate-limit (429) and concurrency (503) middlewares, by reason.",
	Read: func(s RateLimitStats, emit obs.Emit) {
		emit(float64(s.RateRejected), limiter.RequestRate.String())
		emit(float64(s.InFlightRejected), limiter.Concurrency.String())
	},
}}

// loginMetrics counts the logins refused by the limit per user name.
var loginMetrics = []obs.Metric[RateLimitStats]{{
	Subsystem: "login", Name: "attempts_rejected", Kind: obs.Counter,
	Help: "Logins refused (429) because the user name had had its attempts.",
	Read: func(s RateLimitStats, emit obs.Emit) { emit(float64(s.RateRejected), "") },
}}

// ServeMetrics serves every primitive's Stats in the Prometheus text
// format, with the names contrib/prometheus uses. The service is part of
// the root module, which depends on no Prometheus client, so it writes the
// format with internal/obs; a service of yours would register the
// contrib/prometheus collectors instead. Each scrape reads Stats() once
// per primitive and nothing is counted between scrapes.
func (a *App) ServeMetrics(w http.ResponseWriter, _ *http.Request) {
	var set obs.Set
	a.mu.Lock()
	ln := a.ln
	a.mu.Unlock()
	if ln != nil {
		obs.Register(&set, "public", ln.Stats, obs.Listener)
	}
	obs.Register(&set, "per-ip", a.perIP.Stats, obs.Keyed)
	obs.Register(&set, "login", a.loginLimit.Stats, obs.Keyed)
	obs.Register(&set, "login-per-ip", a.loginPerIP.Stats, obs.Keyed)
	obs.Register(&set, "login", func() RateLimitStats {
		return RateLimitStats{RateRejected: a.loginRejected.Load()}
	}, loginMetrics)
	obs.Register(&set, "http", func() RateLimitStats {
		return RateLimitStats{RateRejected: a.rateRejected.Load(), InFlightRejected: a.inFlightRejected.Load()}
	}, middlewareMetrics)
	obs.Register(&set, "jobs", a.jobs.Stats, obs.Spawner)
	obs.Register(&set, chargeOp, a.upstream.watchdog.Stats, obs.Watchdog)
	obs.Register(&set, "journal", a.ledger.journal.mu.Stats, obs.Timed)
	obs.Register(&set, "usage", a.ledger.usage.Stats, obs.Guarded)
	obs.Register(&set, "hardened-server", lockorder.Stats, obs.Checker)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if err := set.WriteText(w); err != nil {
		a.cfg.Logger.Printf("metrics: %v", err)
	}
}
