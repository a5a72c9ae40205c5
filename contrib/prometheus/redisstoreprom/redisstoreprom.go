// Package redisstoreprom exports a limiter/redisstore Limiter's Stats to
// Prometheus: decisions by result, fail-policy (fallback) decisions, Redis
// errors and round trips, deny-cache hits and the circuit breaker's state.
// It is a package of its own so that garrisonprom does not compile a Redis
// client into programs that do not use one.
//
//	c, err := redisstoreprom.NewCollector("api", rl) // rl from redisstore.New
//	if err != nil {
//		return err
//	}
//	if err := reg.Register(c); err != nil {
//		return err
//	}
//
// A rising garrison_redisstore_fallback_decisions_total means Redis is
// failing and the fail policy decides: with FailOpen, every instance admits.
package redisstoreprom

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garrison-go/garrison/contrib/prometheus/internal/collect"
	"github.com/garrison-go/garrison/internal/obs"
	"github.com/garrison-go/garrison/limiter/redisstore"
)

// Source is what NewCollector reads: *redisstore.Limiter.
type Source interface{ Stats() redisstore.Stats }

// NewCollector returns a collector for l, labelled name="<name>", that
// reads l.Stats() on each scrape. It returns an error for an empty name or
// a nil l.
func NewCollector(name string, l Source) (prometheus.Collector, error) {
	if collect.IsNil(l) {
		return nil, errors.New("redisstoreprom: nil limiter for " + name)
	}
	return collect.New(name, storeSource{l}, obs.Store)
}

// storeSource converts redisstore.Stats to the catalog's mirror of it.
type storeSource struct{ l Source }

func (s storeSource) Stats() obs.StoreStats {
	st := s.l.Stats()
	return obs.StoreStats{
		Allowed: st.Allowed, Denied: st.Denied, Failed: st.Failed, Errors: st.Errors,
		FallbackDecisions: st.FallbackDecisions, CacheHits: st.CacheHits, RoundTrips: st.RoundTrips,
		BreakerOpen: st.BreakerOpen, DenyCacheSize: st.DenyCacheSize,
	}
}
