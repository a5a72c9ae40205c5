package garrisonotel_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	garrisonotel "github.com/garrison-go/garrison/contrib/otel"
	"github.com/garrison-go/garrison/spawn"
)

func ExampleObserveSpawner() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader() // a real service uses a periodic exporter
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(ctx) }()

	jobs, err := spawn.New(spawn.WithMaxConcurrent(4))
	if err != nil {
		fmt.Println(err)
		return
	}
	reg, err := garrisonotel.ObserveSpawner(provider.Meter("example"), "jobs", jobs)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = reg.Unregister() }()

	if err := jobs.Go(ctx, func(context.Context) error { return nil }); err != nil {
		fmt.Println(err)
		return
	}
	if err := jobs.Shutdown(ctx); err != nil {
		fmt.Println(err)
		return
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "garrison.spawn.tasks_submitted" {
			fmt.Println(m.Name, m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
		}
	}
	// Output: garrison.spawn.tasks_submitted 1
}
