package garrisonprom_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/changuard"
	garrisonprom "github.com/garrison-go/garrison/contrib/prometheus"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// primitives builds one of each primitive with known counts and returns
// their collectors.
func primitives(t *testing.T) []prometheus.Collector {
	t.Helper()
	ctx := context.Background()
	var cs []prometheus.Collector
	add := func(c prometheus.Collector, err error) {
		t.Helper()
		require.NoError(t, err)
		cs = append(cs, c)
	}

	jobs, err := spawn.New(spawn.WithMaxConcurrent(1))
	require.NoError(t, err)
	require.NoError(t, jobs.Go(ctx, func(context.Context) error { return nil }))
	require.NoError(t, jobs.Go(ctx, func(context.Context) error { return errors.New("boom") }))
	require.NoError(t, jobs.Shutdown(ctx))
	add(garrisonprom.NewSpawnerCollector("jobs", jobs))

	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln, err := limiter.NewListener(inner)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	add(garrisonprom.NewListenerCollector("public", ln))

	k, err := limiter.NewKeyed(1, 1, limiter.WithCapacity(8))
	require.NoError(t, err)
	k.Allow("a")
	add(garrisonprom.NewKeyedCollector("per-ip", k))

	c, err := changuard.NewChan[int](2)
	require.NoError(t, err)
	require.NoError(t, c.TrySend(1))
	require.NoError(t, c.TrySend(2))
	require.ErrorIs(t, c.TrySend(3), changuard.ErrFull)
	add(garrisonprom.NewChanCollector("queue", c))

	o, err := changuard.NewOwner(0, 4)
	require.NoError(t, err)
	require.NoError(t, o.Post(func(n *int) { *n++ }))
	require.NoError(t, o.Shutdown(ctx))
	add(garrisonprom.NewOwnerCollector("counter", o))

	add(garrisonprom.NewGuardedCollector("usage", changuard.NewGuarded(0)))
	add(garrisonprom.NewSnapshotCollector("config", changuard.NewSnapshot("v")))

	d, err := timeout.NewDetacher(2)
	require.NoError(t, err)
	require.NoError(t, d.Run(ctx, time.Second, func(context.Context) error { return nil }))
	add(garrisonprom.NewDetacherCollector("legacy", d))

	wd, err := timeout.NewWatchdog()
	require.NoError(t, err)
	t.Cleanup(func() { _ = wd.Close() })
	add(garrisonprom.NewWatchdogCollector("upstream", wd))

	var mu lockorder.TimedMutex
	require.NoError(t, mu.LockTimeout(time.Second))
	mu.Unlock()
	add(garrisonprom.NewTimedMutexCollector("journal", &mu))
	add(garrisonprom.NewCheckerCollector("svc"))

	co, err := spawn.NewCoalescer[int](4)
	require.NoError(t, err)
	_, _, err = co.Do(ctx, "k", func(context.Context) (int, error) { return 1, nil })
	require.NoError(t, err)
	add(garrisonprom.NewCoalescerCollector("lookups", co))
	al, err := limiter.NewAdaptiveLimiter(1, 10)
	require.NoError(t, err)
	add(garrisonprom.NewAdaptiveCollector("api", al))
	rd, err := limiter.NewReadiness([]limiter.LoadProbe{{Name: "queue", Load: func() float64 { return 0 }}})
	require.NoError(t, err)
	add(garrisonprom.NewReadinessCollector("svc", rd))
	var mc limiter.MiddlewareCounter
	h := limiter.ConcurrencyMiddleware(1, limiter.WithCounter(&mc))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	add(garrisonprom.NewMiddlewareCollector("api", &mc))
	gs, err := spawn.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = gs.Shutdown(context.Background()) })
	grp, _ := spawn.NewGroup(ctx, gs)
	require.NoError(t, grp.Go(func(context.Context) error { return nil }))
	require.NoError(t, grp.Wait())
	add(garrisonprom.NewGroupCollector("batch", grp))
	return cs
}

func TestCollectorsLintAndValues(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for _, c := range primitives(t) {
		require.NoError(t, reg.Register(c))
	}
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)

	want := `
# HELP garrison_spawn_task_outcomes_total Tasks by the one state they ended in.
# TYPE garrison_spawn_task_outcomes_total counter
garrison_spawn_task_outcomes_total{name="jobs",outcome="canceled"} 0
garrison_spawn_task_outcomes_total{name="jobs",outcome="failed"} 1
garrison_spawn_task_outcomes_total{name="jobs",outcome="panicked"} 0
garrison_spawn_task_outcomes_total{name="jobs",outcome="rejected"} 0
garrison_spawn_task_outcomes_total{name="jobs",outcome="shed"} 0
garrison_spawn_task_outcomes_total{name="jobs",outcome="succeeded"} 1
garrison_spawn_task_outcomes_total{name="jobs",outcome="timed_out"} 0
# HELP garrison_chan_values_offered_total Values passed to Send or TrySend, by outcome: sent, or handed back.
# TYPE garrison_chan_values_offered_total counter
garrison_chan_values_offered_total{name="queue",outcome="canceled"} 0
garrison_chan_values_offered_total{name="queue",outcome="rejected"} 1
garrison_chan_values_offered_total{name="queue",outcome="returned"} 0
garrison_chan_values_offered_total{name="queue",outcome="sent"} 2
# HELP garrison_owner_jobs_total Jobs by outcome.
# TYPE garrison_owner_jobs_total counter
garrison_owner_jobs_total{name="counter",outcome="completed"} 1
garrison_owner_jobs_total{name="counter",outcome="rejected"} 0
garrison_owner_jobs_total{name="counter",outcome="skipped"} 0
# HELP garrison_detacher_calls_total Calls by outcome.
# TYPE garrison_detacher_calls_total counter
garrison_detacher_calls_total{name="legacy",outcome="canceled"} 0
garrison_detacher_calls_total{name="legacy",outcome="completed"} 1
garrison_detacher_calls_total{name="legacy",outcome="rejected"} 0
garrison_detacher_calls_total{name="legacy",outcome="timed_out"} 0
# HELP garrison_group_tasks_total Tasks offered to the group, by admission.
# TYPE garrison_group_tasks_total counter
garrison_group_tasks_total{name="batch",outcome="admitted"} 1
garrison_group_tasks_total{name="batch",outcome="rejected"} 0
# HELP garrison_middleware_requests_total Requests seen by the middleware, by outcome.
# TYPE garrison_middleware_requests_total counter
garrison_middleware_requests_total{name="api",outcome="allowed"} 1
garrison_middleware_requests_total{name="api",outcome="dry_run_rejected"} 0
garrison_middleware_requests_total{name="api",outcome="exempt"} 0
garrison_middleware_requests_total{name="api",outcome="rejected"} 0
# HELP garrison_coalescer_calls_total Calls of Do by outcome: started an execution, joined one in flight, or rejected.
# TYPE garrison_coalescer_calls_total counter
garrison_coalescer_calls_total{name="lookups",outcome="executed"} 1
garrison_coalescer_calls_total{name="lookups",outcome="joined"} 0
garrison_coalescer_calls_total{name="lookups",outcome="rejected"} 0
# HELP garrison_keyed_tracked_keys Keys tracked now.
# TYPE garrison_keyed_tracked_keys gauge
garrison_keyed_tracked_keys{name="per-ip"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"garrison_spawn_task_outcomes_total", "garrison_chan_values_offered_total",
		"garrison_owner_jobs_total", "garrison_detacher_calls_total", "garrison_keyed_tracked_keys",
		"garrison_coalescer_calls_total", "garrison_middleware_requests_total", "garrison_group_tasks_total"))
	for _, name := range []string{"garrison_adaptive_limit", "garrison_readiness_ready"} {
		n, err := testutil.GatherAndCount(reg, name)
		require.NoError(t, err)
		assert.Equal(t, 1, n, name)
	}
}

// The listener's rejections carry the limiter.Reason string as reason, and
// are read on each scrape, not cached at registration.
func TestListenerReasonsReadOnScrape(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln, err := limiter.NewListener(inner, limiter.WithMaxConnsPerIP(1))
	require.NoError(t, err)
	defer ln.Close()
	c, err := garrisonprom.NewListenerCollector("public", ln)
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))

	rejected := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "garrison_listener_connections_rejected_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" && l.GetValue() == limiter.IPConns.String() {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		t.Fatal("no ip-conns series")
		return 0
	}
	require.Zero(t, rejected())

	// Two connections from 127.0.0.1: the second is over the per-IP cap.
	first, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer first.Close()
	second, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer second.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		// Admits first, rejects second, then waits until Close.
		for {
			conn, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- conn
		}
	}()
	require.Eventually(t, func() bool { return rejected() == 1 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, ln.Close())
	for conn := range accepted {
		_ = conn.Close()
	}
}

func TestConstructorErrors(t *testing.T) {
	var nilSpawner *spawn.Spawner
	_, err := garrisonprom.NewSpawnerCollector("jobs", nilSpawner)
	assert.Error(t, err)
	_, err = garrisonprom.NewSpawnerCollector("jobs", nil)
	assert.Error(t, err)
	s, err := spawn.New()
	require.NoError(t, err)
	_, err = garrisonprom.NewSpawnerCollector("", s)
	assert.Error(t, err)
	_, err = garrisonprom.NewCheckerCollector("")
	assert.Error(t, err)
}

// Two collectors of one kind with different names share a registry; the
// same name twice is refused by the registry.
func TestSameKindTwice(t *testing.T) {
	a, err := changuard.NewChan[int](1)
	require.NoError(t, err)
	b, err := changuard.NewChan[string](1)
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	ca, err := garrisonprom.NewChanCollector("a", a)
	require.NoError(t, err)
	cb, err := garrisonprom.NewChanCollector("b", b)
	require.NoError(t, err)
	again, err := garrisonprom.NewChanCollector("a", b)
	require.NoError(t, err)
	require.NoError(t, reg.Register(ca))
	require.NoError(t, reg.Register(cb))
	assert.Error(t, reg.Register(again))
	n, err := testutil.GatherAndCount(reg, "garrison_chan_capacity")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}
