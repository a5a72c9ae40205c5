// Package garrisonprom exports the Stats of garrison's primitives to
// Prometheus, so that an operator sees the defence at work: connections
// rejected by reason, tasks shed, stalls found, lock-order reports.
//
// Each constructor returns a prometheus.Collector that reads the
// primitive's Stats() when Prometheus scrapes, and at no other time: the
// hot paths of the primitives do not change. Every metric carries a
// name="..." label, the name given at registration, so several spawners or
// listeners can share one registry. Other labels take values from fixed
// sets (limiter.Reason strings, task outcomes): a client can never create
// a series.
//
//	jobs, err := spawn.New(spawn.WithMaxConcurrent(64))
//	if err != nil {
//		return err
//	}
//	c, err := garrisonprom.NewSpawnerCollector("jobs", jobs)
//	if err != nil {
//		return err
//	}
//	reg := prometheus.NewRegistry()
//	if err := reg.Register(c); err != nil {
//		return err
//	}
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Names follow the Prometheus conventions: garrison_<primitive>_<figure>,
// counters end in _total, for example
// garrison_listener_connections_rejected_total{name="public",reason="ip-conns"}
// and garrison_spawn_task_outcomes_total{name="jobs",outcome="panicked"}.
// The contrib/otel module exports the same figures under the same names.
// The collector for limiter/redisstore lives in the redisstoreprom
// subpackage, so that importing this one does not compile a Redis client.
//
// The package is named garrisonprom so that it does not shadow the
// Prometheus client's own prometheus package.
package garrisonprom
