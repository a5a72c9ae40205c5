package obs

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/changuard"
	"github.com/garrison-go/garrison/limiter"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
	"github.com/garrison-go/garrison/timeout"
)

// checkCatalog checks every metric of one catalog against a zero snapshot
// and records its names in seen, which must stay unique across catalogs.
func checkCatalog[S any](t *testing.T, seen map[string]bool, metrics []Metric[S]) {
	t.Helper()
	var zero S
	for _, m := range metrics {
		assert.True(t, validName(m.Subsystem) && validName(m.Name), "bad name %q", m.PromName())
		assert.False(t, seen[m.PromName()], "duplicate %q", m.PromName())
		seen[m.PromName()] = true
		assert.NotEmpty(t, m.Help, m.PromName())
		assert.NotEqual(t, NameLabel, m.Label, m.PromName())
		if m.Label != "" {
			assert.True(t, validName(m.Label), "bad label %q", m.Label)
		}
		values := map[string]bool{}
		n := 0
		m.Read(zero, func(v float64, lv string) {
			n++
			assert.Zero(t, v, m.PromName())
			if m.Label == "" {
				assert.Empty(t, lv, m.PromName())
				return
			}
			assert.NotEmpty(t, lv, m.PromName())
			assert.False(t, values[lv], "%s: label value %q twice", m.PromName(), lv)
			values[lv] = true
		})
		if m.Label == "" {
			assert.Equal(t, 1, n, m.PromName())
		} else {
			assert.Greater(t, n, 1, m.PromName())
		}
	}
}

func TestCatalogNames(t *testing.T) {
	seen := map[string]bool{}
	checkCatalog(t, seen, Spawner)
	checkCatalog(t, seen, Listener)
	checkCatalog(t, seen, Keyed)
	checkCatalog(t, seen, Chan)
	checkCatalog(t, seen, Owner)
	checkCatalog(t, seen, Guarded)
	checkCatalog(t, seen, Snapshot)
	checkCatalog(t, seen, Detacher)
	checkCatalog(t, seen, Watchdog)
	checkCatalog(t, seen, Checker)
	checkCatalog(t, seen, Timed)
	checkCatalog(t, seen, Store)
	checkCatalog(t, seen, Coalescer)
	checkCatalog(t, seen, Adaptive)
	checkCatalog(t, seen, Readiness)
}

func TestListenerReasonsAreReasonStrings(t *testing.T) {
	var st limiter.ListenerStats
	st.Rejected[limiter.IPConns] = 7
	st.Rejected[limiter.SlowClient] = 3
	got := map[string]float64{}
	for _, m := range Listener {
		if m.Label == "reason" {
			m.Read(st, func(v float64, lv string) { got[lv] = v })
		}
	}
	assert.Equal(t, 7.0, got[limiter.IPConns.String()])
	assert.Equal(t, 3.0, got[limiter.SlowClient.String()])
	assert.NotContains(t, got, limiter.NoReason.String())
	assert.NotContains(t, got, limiter.RequestRate.String(), "a listener never rate-limits requests")
	assert.Len(t, got, len(st.Rejected)-3)
}

func TestWriteText(t *testing.T) {
	ctx := context.Background()
	jobs, err := spawn.New()
	require.NoError(t, err)
	mail, err := spawn.New()
	require.NoError(t, err)
	require.NoError(t, jobs.Go(ctx, func(context.Context) error { return nil }))
	require.NoError(t, jobs.Shutdown(ctx))
	require.NoError(t, mail.Shutdown(ctx))
	c, err := changuard.NewChan[int](4)
	require.NoError(t, err)
	require.NoError(t, c.TrySend(1))
	wd, err := timeout.NewWatchdog()
	require.NoError(t, err)
	defer wd.Close()

	var set Set
	Register(&set, "jobs", jobs.Stats, Spawner)
	Register(&set, `odd"name\`, mail.Stats, Spawner)
	Register(&set, "queue", c.Stats, Chan)
	Register(&set, "upstream", wd.Stats, Watchdog)
	Register(&set, "process", lockorder.Stats, Checker)
	var b strings.Builder
	require.NoError(t, set.WriteText(&b))
	out := b.String()

	assert.Contains(t, out, "garrison_spawn_task_outcomes_total{name=\"jobs\",outcome=\"succeeded\"} 1\n")
	assert.Contains(t, out, "garrison_spawn_task_outcomes_total{name=\"odd\\\"name\\\\\",outcome=\"succeeded\"} 0\n")
	assert.Contains(t, out, "garrison_chan_values_offered_total{name=\"queue\",outcome=\"sent\"} 1\n")
	assert.Contains(t, out, "garrison_chan_length{name=\"queue\"} 1\n")
	// Two spawners share one HELP and TYPE block per family.
	assert.Equal(t, 1, strings.Count(out, "# TYPE garrison_spawn_task_outcomes_total counter\n"))
	assert.Equal(t, 1, strings.Count(out, "# TYPE garrison_spawn_workers gauge\n"))
	// Every sample line follows its family's TYPE line.
	family := ""
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			family = strings.Fields(name)[0]
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		assert.True(t, strings.HasPrefix(line, family+"{"), "%q outside its family %q", line, family)
	}
}
