package garrisonotel_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/garrison-go/garrison/changuard"
	garrisonotel "github.com/garrison-go/garrison/contrib/otel"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// newMeter returns a meter whose figures reader collects on demand.
func newMeter(t *testing.T) (metric.Meter, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { require.NoError(t, provider.Shutdown(context.Background())) })
	return provider.Meter("garrison-test"), reader
}

// point is one collected data point: instrument, attributes, value, and
// whether the instrument is a monotonic sum (a counter).
type point struct {
	value   int64
	counter bool
}

// collect returns every data point, keyed by instrument name and the
// attributes' canonical encoding.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]point{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				assert.True(t, d.IsMonotonic, m.Name)
				assert.Equal(t, metricdata.CumulativeTemporality, d.Temporality, m.Name)
				for _, dp := range d.DataPoints {
					out[m.Name+" "+dp.Attributes.Encoded(attribute.DefaultEncoder())] = point{dp.Value, true}
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					out[m.Name+" "+dp.Attributes.Encoded(attribute.DefaultEncoder())] = point{int64(dp.Value), false}
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

func TestObserveEveryPrimitive(t *testing.T) {
	ctx := context.Background()
	meter, reader := newMeter(t)
	var regs []metric.Registration
	add := func(r metric.Registration, err error) {
		t.Helper()
		require.NoError(t, err)
		regs = append(regs, r)
	}

	jobs, err := spawn.New(spawn.WithMaxConcurrent(1))
	require.NoError(t, err)
	require.NoError(t, jobs.Go(ctx, func(context.Context) error { return nil }))
	require.NoError(t, jobs.Go(ctx, func(context.Context) error { return errors.New("boom") }))
	require.NoError(t, jobs.Shutdown(ctx))
	add(garrisonotel.ObserveSpawner(meter, "jobs", jobs))

	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln, err := limiter.NewListener(inner)
	require.NoError(t, err)
	defer ln.Close()
	add(garrisonotel.ObserveListener(meter, "public", ln))

	k, err := limiter.NewKeyed(1, 1, limiter.WithCapacity(8))
	require.NoError(t, err)
	k.Allow("a")
	add(garrisonotel.ObserveKeyed(meter, "per-ip", k))

	c, err := changuard.NewChan[int](1)
	require.NoError(t, err)
	require.NoError(t, c.TrySend(1))
	require.ErrorIs(t, c.TrySend(2), changuard.ErrFull)
	add(garrisonotel.ObserveChan(meter, "queue", c))

	o, err := changuard.NewOwner(0, 2)
	require.NoError(t, err)
	require.NoError(t, o.Post(func(*int) { panic("bug") }))
	require.NoError(t, o.Shutdown(ctx))
	add(garrisonotel.ObserveOwner(meter, "counter", o))
	add(garrisonotel.ObserveGuarded(meter, "usage", changuard.NewGuarded(0)))
	add(garrisonotel.ObserveSnapshot(meter, "config", changuard.NewSnapshot(0)))

	d, err := timeout.NewDetacher(1)
	require.NoError(t, err)
	require.NoError(t, d.Run(ctx, time.Second, func(context.Context) error { return nil }))
	add(garrisonotel.ObserveDetacher(meter, "legacy", d))

	wd, err := timeout.NewWatchdog()
	require.NoError(t, err)
	defer wd.Close()
	add(garrisonotel.ObserveWatchdog(meter, "upstream", wd))

	var mu lockorder.TimedMutex
	require.NoError(t, mu.LockTimeout(time.Second))
	mu.Unlock()
	add(garrisonotel.ObserveTimedMutex(meter, "journal", &mu))
	add(garrisonotel.ObserveChecker(meter, "svc"))
	co, err := spawn.NewCoalescer[int](4)
	require.NoError(t, err)
	_, _, err = co.Do(ctx, "k", func(context.Context) (int, error) { return 1, nil })
	require.NoError(t, err)
	add(garrisonotel.ObserveCoalescer(meter, "lookups", co))
	al, err := limiter.NewAdaptiveLimiter(1, 10)
	require.NoError(t, err)
	add(garrisonotel.ObserveAdaptive(meter, "api", al))
	rd, err := limiter.NewReadiness([]limiter.LoadProbe{{Name: "queue", Load: func() float64 { return 0 }}})
	require.NoError(t, err)
	add(garrisonotel.ObserveReadiness(meter, "svc", rd))
	var mc limiter.MiddlewareCounter
	h := limiter.ConcurrencyMiddleware(1, limiter.WithCounter(&mc))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	add(garrisonotel.ObserveMiddleware(meter, "api", &mc))
	gs, err := spawn.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = gs.Shutdown(context.Background()) })
	grp, _ := spawn.NewGroup(context.Background(), gs)
	add(garrisonotel.ObserveGroup(meter, "batch", grp))

	got := collect(t, reader)
	assert.Equal(t, point{1, true}, got["garrison.spawn.task_outcomes name=jobs,outcome=succeeded"])
	assert.Equal(t, point{1, true}, got["garrison.spawn.task_outcomes name=jobs,outcome=failed"])
	assert.Equal(t, point{2, true}, got["garrison.spawn.tasks_submitted name=jobs"])
	assert.Equal(t, point{0, false}, got["garrison.spawn.tasks_running name=jobs"])
	assert.Equal(t, point{0, true}, got["garrison.listener.connections_rejected name=public,reason=ip-conns"])
	assert.Equal(t, point{1, false}, got["garrison.keyed.tracked_keys name=per-ip"])
	assert.Equal(t, point{1, true}, got["garrison.chan.values_offered name=queue,outcome=rejected"])
	assert.Equal(t, point{1, false}, got["garrison.chan.length name=queue"])
	assert.Equal(t, point{1, true}, got["garrison.owner.panics name=counter"])
	assert.Equal(t, point{1, true}, got["garrison.detacher.calls name=legacy,outcome=completed"])
	assert.Equal(t, point{0, false}, got["garrison.watchdog.tracking name=upstream"])
	assert.Equal(t, point{0, false}, got["garrison.timed_mutex.locked name=journal"])
	assert.Contains(t, got, "garrison.lockorder.reports name=svc")
	assert.Contains(t, got, "garrison.guarded.contended name=usage")
	assert.Contains(t, got, "garrison.snapshot.version name=config")
	assert.Equal(t, point{1, true}, got["garrison.coalescer.calls name=lookups,outcome=executed"])
	assert.Contains(t, got, "garrison.adaptive.limit name=api")
	assert.Contains(t, got, "garrison.readiness.ready name=svc")

	// Figures are read at each collection.
	k.Allow("b")
	assert.Equal(t, point{2, false}, collect(t, reader)["garrison.keyed.tracked_keys name=per-ip"])

	// Unregistering stops the callbacks.
	for _, r := range regs {
		require.NoError(t, r.Unregister())
	}
	assert.Empty(t, collect(t, reader))
}

func TestObserveErrors(t *testing.T) {
	meter, _ := newMeter(t)
	s, err := spawn.New()
	require.NoError(t, err)
	_, err = garrisonotel.ObserveSpawner(nil, "jobs", s)
	assert.Error(t, err)
	_, err = garrisonotel.ObserveSpawner(meter, "", s)
	assert.Error(t, err)
	var nilSpawner *spawn.Spawner
	_, err = garrisonotel.ObserveSpawner(meter, "jobs", nilSpawner)
	assert.Error(t, err)
	_, err = garrisonotel.ObserveSpawner(meter, "jobs", nil)
	assert.Error(t, err)
}
