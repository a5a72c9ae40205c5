// Package redisstoreotel observes a limiter/redisstore Limiter's Stats as
// OpenTelemetry instruments: decisions by result, fail-policy (fallback)
// decisions, Redis errors and round trips, deny-cache hits and the circuit
// breaker's state. It is a package of its own so that garrisonotel does not
// compile a Redis client into programs that do not use one.
//
//	reg, err := redisstoreotel.Observe(meter, "api", rl) // rl from redisstore.New
//	if err != nil {
//		return err
//	}
//	defer func() { _ = reg.Unregister() }()
package redisstoreotel

import (
	"errors"

	"go.opentelemetry.io/otel/metric"

	"github.com/garrison-go/garrison/contrib/otel/internal/observe"
	"github.com/garrison-go/garrison/internal/obs"
	"github.com/garrison-go/garrison/limiter/redisstore"
)

// Source is what Observe reads: *redisstore.Limiter.
type Source interface{ Stats() redisstore.Stats }

// Observe creates the instruments on meter and a callback reading l.Stats()
// once per collection, with the attribute name=<name>. It returns an error
// for a nil meter, an empty name or a nil l.
func Observe(meter metric.Meter, name string, l Source) (metric.Registration, error) {
	if observe.IsNil(l) {
		return nil, errors.New("redisstoreotel: nil limiter for " + name)
	}
	return observe.Register(meter, name, storeSource{l}, obs.Store)
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
