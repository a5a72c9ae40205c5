package consumer

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"

	garrisongrpc "github.com/garrison-go/garrison/contrib/grpc"
	garrisonotel "github.com/garrison-go/garrison/contrib/otel"
	"github.com/garrison-go/garrison/contrib/otel/redisstoreotel"
	garrisonprom "github.com/garrison-go/garrison/contrib/prometheus"
	"github.com/garrison-go/garrison/contrib/prometheus/redisstoreprom"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/limiter/redisstore"
	"github.com/garrison-go/garrison/lockorder/lockcheck"
	"github.com/garrison-go/garrison/spawn"
)

// The static analyzer is a module of its own: it must resolve too.
func TestLockcheckModule(t *testing.T) {
	if lockcheck.Analyzer.Name == "" {
		t.Fatal("lockcheck.Analyzer has no name")
	}
}

func TestContribModules(t *testing.T) {
	ctx := context.Background()
	jobs, err := spawn.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := jobs.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer client.Close()
	rl, err := redisstore.New(client, 10, 1)
	if err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	c, err := garrisonprom.NewSpawnerCollector("jobs", jobs)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := redisstoreprom.NewCollector("api", rl)
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(c, rc)
	if mfs, err := reg.Gather(); err != nil || len(mfs) == 0 {
		t.Fatalf("gather: %d families, %v", len(mfs), err)
	}

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(ctx) }()
	if _, err := garrisonotel.ObserveSpawner(provider.Meter("consumer"), "jobs", jobs); err != nil {
		t.Fatal(err)
	}
	if _, err := redisstoreotel.Observe(provider.Meter("consumer"), "api", rl); err != nil {
		t.Fatal(err)
	}

	perPeer, err := limiter.NewKeyed(10, 10)
	if err != nil {
		t.Fatal(err)
	}
	g, err := garrisongrpc.New(garrisongrpc.WithRateLimit(perPeer), garrisongrpc.WithSpawner(jobs))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(g.UnaryServerInterceptor()))
	srv.Stop()
}
