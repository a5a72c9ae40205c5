package garrisonprom_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	garrisonprom "github.com/garrison-go/garrison/contrib/prometheus"
	"github.com/garrison-go/garrison/spawn"
)

func ExampleNewSpawnerCollector() {
	ctx := context.Background()
	jobs, err := spawn.New(spawn.WithMaxConcurrent(4))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := garrisonprom.NewSpawnerCollector("jobs", jobs)
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		fmt.Println(err)
		return
	}
	// Serve reg with promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).

	if err := jobs.Go(ctx, func(context.Context) error { panic("bug") }); err != nil {
		fmt.Println(err)
		return
	}
	if err := jobs.Shutdown(ctx); err != nil {
		fmt.Println(err)
		return
	}
	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP garrison_spawn_task_outcomes_total Tasks by the one state they ended in.
# TYPE garrison_spawn_task_outcomes_total counter
garrison_spawn_task_outcomes_total{name="jobs",outcome="canceled"} 0
garrison_spawn_task_outcomes_total{name="jobs",outcome="failed"} 0
garrison_spawn_task_outcomes_total{name="jobs",outcome="panicked"} 1
garrison_spawn_task_outcomes_total{name="jobs",outcome="rejected"} 0
garrison_spawn_task_outcomes_total{name="jobs",outcome="shed"} 0
garrison_spawn_task_outcomes_total{name="jobs",outcome="succeeded"} 0
garrison_spawn_task_outcomes_total{name="jobs",outcome="timed_out"} 0
`), "garrison_spawn_task_outcomes_total")
	fmt.Println("scrape matches:", err == nil)
	// Output: scrape matches: true
}
