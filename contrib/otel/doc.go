// Package garrisonotel exports the Stats of garrison's primitives as
// OpenTelemetry observable instruments: the same figures, names and labels
// as the contrib/prometheus module, for services that ship metrics through
// an OpenTelemetry SDK.
//
// Each Observe function creates the instruments on the given Meter and
// registers one callback that reads the primitive's Stats() once per
// collection, and at no other time: the primitives' hot paths do not
// change. Every observation carries the attribute name=<name>; other
// attributes take values from fixed sets (limiter.Reason strings, task
// outcomes), never from client input.
//
//	meter := provider.Meter("github.com/garrison-go/garrison")
//	reg, err := garrisonotel.ObserveSpawner(meter, "jobs", jobs)
//	if err != nil {
//		return err
//	}
//	defer func() { _ = reg.Unregister() }()
//
// Instruments are named garrison.<primitive>.<figure>, for example
// garrison.listener.connections_rejected with attribute reason="ip-conns":
// counters are Int64ObservableCounter (a Prometheus exporter adds _total),
// gauges Float64ObservableGauge (latencies are in seconds). The observer for limiter/redisstore lives in
// the redisstoreotel subpackage, so that importing this one does not
// compile a Redis client.
//
// The package is named garrisonotel so that it does not shadow the
// OpenTelemetry API's otel package.
package garrisonotel
