package siege

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/garrison-go/garrison/limiter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The botnet scenarios re-execute the test binary as their attacker.
	if RunChildIfAsked() {
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestQuickSiege runs `siege -quick` in this process and checks that each
// threat hit the naive twin and bounced off the hardened one. It asserts
// the siege's own verdicts and, with margins far inside the effects the
// siege measures (10× to 1000× on a loaded 2-core machine), the figures
// that prove each threat was real.
func TestQuickSiege(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	// The flood scenarios of issue 11 have their own test below, with
	// assertions that hold under -race on a loaded machine.
	res, err := Run(ctx, Options{Quick: true, Progress: &progress, only: func(name string) bool { return !floodScenarios[name] && !overloadScenarios[name] }})
	require.NoError(t, err)

	var table bytes.Buffer
	require.NoError(t, WriteTable(&table, res))
	t.Log("\n" + table.String())

	byName := map[string]ScenarioResult{}
	for _, s := range res.Scenarios {
		byName[s.Name] = s
		for _, f := range s.Figures {
			assert.Truef(t, f.OK, "%s/%s: naive %v, hardened %v: %s", s.Name, f.Name, f.Naive, f.Hardened, f.Verdict)
		}
	}
	var want []string
	for _, n := range Names() {
		if !floodScenarios[n] && !overloadScenarios[n] {
			want = append(want, n)
		}
	}
	require.ElementsMatch(t, want, keys(byName))
	assert.True(t, res.OK)

	fig := func(scenario, name string) Figure {
		t.Helper()
		for _, f := range byName[scenario].Figures {
			if f.Name == name {
				return f
			}
		}
		t.Fatalf("no figure %s/%s", scenario, name)
		return Figure{}
	}

	spawn := fig("spawn-flood", "peak goroutines")
	assert.Less(t, 1.5*spawn.Hardened, spawn.Naive, "spawn flood: goroutines must pile up in the naive twin only")

	conns := fig("conn-flood", "legit success")
	assert.GreaterOrEqual(t, conns.Hardened, 90.0, "conn flood: the hardened twin must keep serving")
	assert.Less(t, conns.Naive, conns.Hardened)

	assert.Equal(t, 0.0, fig("deadlock", "answers after attack").Naive, "the naive twin must have deadlocked")
	assert.Equal(t, 0.0, fig("deadlock", "requests left hanging").Hardened)
	report := strings.Join(byName["deadlock"].Notes, "\n")
	for _, want := range []string{"ledger.account", "ledger.journal", "(*ledger).transfer", "(*ledger).audit"} {
		assert.Contains(t, report, want, "the inversion report must name both locks and both call sites")
	}

	lost := fig("race", "lost updates")
	assert.Greater(t, lost.Naive, 0.0, "the naive twin must lose updates")
	assert.Equal(t, 0.0, lost.Hardened)

	stuck := fig("stuck-upstream", "goroutines stuck after attack")
	assert.Less(t, 4*stuck.Hardened, stuck.Naive, "stuck upstream: goroutines must pile up in the naive twin only")
	assert.Greater(t, fig("stuck-upstream", "attributed timeouts").Hardened, 0.0)

	// The machine-readable and HTML outputs render the same run.
	var js bytes.Buffer
	require.NoError(t, WriteJSON(&js, res))
	var back Result
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Len(t, back.Scenarios, len(res.Scenarios))
	var page bytes.Buffer
	require.NoError(t, WriteHTML(&page, res))
	for _, sc := range res.Scenarios {
		for _, class := range []string{"bars", "goroutines", "heap"} {
			assert.Contains(t, page.String(), fmt.Sprintf(`<svg class=%q data-scenario=%q`, class, sc.Name), "every scenario draws its figures and its resources")
		}
	}
	legend := legendFor(res)
	for _, want := range []string{"legit      =", "legit success =", "answered   =", "peak       =", "attributed timeouts ="} {
		assert.True(t, slices.ContainsFunc(legend, func(l string) bool { return strings.HasPrefix(l, want) }), "the run's rows use %q", want)
	}
	for _, l := range legend {
		assert.Contains(t, table.String(), l, "the table defines its rows")
	}
	assert.NotContains(t, page.String(), "<script")
	assert.NotContains(t, page.String(), "http://", "the report must be self-contained")
}

// TestDeadlockReportChild covers what `go run ./examples/siege` does when
// it was built without checking: build and run the replay with the
// lockorder tag and print its report.
func TestDeadlockReportChild(t *testing.T) {
	e := newEnv(Options{})
	e.childReport = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	report, how := e.lockReport(ctx)
	require.NotEmpty(t, report, how)
	assert.Contains(t, how, "go run -tags lockorder")
	assert.Contains(t, report, "lock order inversion: ")
	for _, want := range []string{"ledger.account", "ledger.journal", "(*ledger).transfer", "(*ledger).audit", "frames outside examples/ omitted"} {
		assert.Contains(t, report, want)
	}
}

func keys(m map[string]ScenarioResult) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestRunRejectsUnknownScenario(t *testing.T) {
	_, err := Run(context.Background(), Options{Scenario: "nope"})
	require.ErrorContains(t, err, `unknown scenario "nope"`)
}

func TestFigureJudge(t *testing.T) {
	for _, tc := range []struct {
		f    Figure
		want bool
	}{
		{Figure{Naive: 10, Hardened: 1, Better: "lower"}, true},
		{Figure{Naive: 1, Hardened: 1, Better: "lower"}, false},
		{Figure{Naive: 1, Hardened: 10, Better: "lower"}, false},
		{Figure{Naive: 50, Hardened: 100, Better: "higher"}, true},
		{Figure{Naive: 100, Hardened: 100, Better: "higher", Ideal: 100, TieOK: true}, true},
		{Figure{Naive: 100, Hardened: 100, Better: "higher", Ideal: 100}, false},
		{Figure{Naive: 5, Hardened: 1, Better: "lower", Ideal: 0, Required: true}, false},
		{Figure{Naive: 5, Hardened: 0, Better: "lower", Ideal: 0, Required: true}, true},
		{Figure{Naive: 0, Hardened: 0, Better: "lower", Ideal: 0, Required: true}, false},
	} {
		tc.f.judge()
		assert.Equalf(t, tc.want, tc.f.OK, "%+v", tc.f)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	assert.Equal(t, 1.0, percentile(xs, 0))
	assert.Equal(t, 3.0, percentile(xs, 0.5))
	assert.Equal(t, 5.0, percentile(xs, 0.99))
	st := summarize([]Sample{{LatencyMS: 2, OK: true, Answered: true}, {LatencyMS: 3, Answered: false}}, time.Second)
	assert.Equal(t, 1000.0, st.P99, "an unanswered request counts as the full timeout")
	assert.Equal(t, 1, st.OK)
}

func TestCompactReport(t *testing.T) {
	in := "lock order inversion: a -> b -> a\n" +
		"  goroutine 1 acquired b while holding a (first seen):\n" +
		"        /x/examples/app/ledger.go:1 app.transfer\n" +
		"        /go/src/net/http/server.go:2 net/http.HandlerFunc.ServeHTTP\n" +
		"  goroutine 2 acquired a while holding b (this acquisition):\n" +
		"        /x/examples/app/ledger.go:9 app.audit"
	out := compactReport(in)
	assert.Contains(t, out, "app.transfer")
	assert.Contains(t, out, "app.audit")
	assert.NotContains(t, out, "net/http")
	assert.Contains(t, out, "(1 frames outside examples/ omitted)")
}

// floodScenarios are issue 11's: botnet, keep-alive idle, HTTP/2 rapid
// reset.
var floodScenarios = map[string]bool{"botnet": true, "keepalive-idle": true, "http2": true}

// TestFloodScenarios runs the flood scenarios with short attacks and
// checks their logic: every figure measured on both twins, both botnet
// phases run with legit traffic and the run saying what it did to the fd
// limit, the rapid-reset attacker really writing streams, and the
// keep-alive clients' reconnect count reading zero on the naive twin,
// which never closes a connection. Who wins is the siege's own verdict
// (go run ./examples/siege), not asserted here: on a loaded 2-core
// machine under -race, latency comparisons are noise.
func TestFloodScenarios(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{Quick: true, only: func(name string) bool { return floodScenarios[name] },
		tweak: func(p *plan) {
			p.botnetPhase = 1500 * time.Millisecond
			p.kaPhase = 2500 * time.Millisecond
			// A budget the server works through even under -race: the
			// attacker then holds its connections until the phase ends.
			p.h2Streams, p.h2Phase = 5000, 3*time.Second
		}})
	require.NoError(t, err)
	var table bytes.Buffer
	require.NoError(t, WriteTable(&table, res))
	t.Log("\n" + table.String())
	require.Len(t, res.Scenarios, len(floodScenarios))

	for _, s := range res.Scenarios {
		require.NotEmpty(t, s.Figures, s.Name)
		for _, f := range s.Figures {
			assert.False(t, math.IsNaN(f.Naive) || math.IsNaN(f.Hardened), "%s/%s measured on both twins", s.Name, f.Name)
			assert.NotEmpty(t, f.Verdict)
		}
		for _, side := range []*SideResult{s.Naive, s.Hardened} {
			assert.NotEmpty(t, side.Legit, "%s: legit traffic ran", s.Name)
		}
		notes := strings.Join(s.Notes, "\n")
		switch s.Name {
		case "botnet":
			assert.Contains(t, notes, "fds ample:")
			assert.Contains(t, notes, "fds capped:")
			assert.Contains(t, notes, "RLIMIT_NOFILE lowered", "the run says what it did to the fd limit")
			assert.Len(t, s.Figures, 4)
		case "keepalive-idle":
			for _, k := range []string{"legit reconnects, one address", "legit reconnects, own addresses"} {
				assert.Equal(t, 0.0, s.Naive.Values[k], "the naive twin never closes a connection: any reconnect would be a counting error")
			}
		case "http2":
			for _, side := range []*SideResult{s.Naive, s.Hardened} {
				assert.Positive(t, side.Values["attack streams written"])
			}
		}
	}
}

// overloadScenarios are issue 16's: they run for long phases, so they have
// their own test below; their bounds are the siege's own verdict.
var overloadScenarios = map[string]bool{"capacity-drop": true, "priority": true}

// TestOverloadScenarios runs capacity-drop and priority with short phases
// and checks what makes them evidence, with margins that hold under -race
// on a loaded machine: the naive service collapses, the fast-tuned cap
// loses the slow phase, the adaptive limit keeps most of it, critical
// requests get through the sheddable flood. The 90 % and 99 % bounds are
// the siege's own verdict (go run ./examples/siege; .ci/checks/siege.sh).
func TestOverloadScenarios(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{Quick: true, only: func(name string) bool { return overloadScenarios[name] },
		tweak: func(p *plan) { p.drop.phase, p.prio.d = 4*time.Second, 3*time.Second }})
	require.NoError(t, err)
	var table bytes.Buffer
	require.NoError(t, WriteTable(&table, res))
	t.Log("\n" + table.String())
	require.Len(t, res.Scenarios, len(overloadScenarios))
	for _, s := range res.Scenarios {
		// The slow-tuned cap is the control: on a machine that can run
		// the scenario at all it keeps most of the slow phase (about 210
		// of the database's 250 req/s). Under far more load than CI's
		// (race-built test binaries of other packages at GOMAXPROCS=1)
		// it was seen to starve every configuration, static caps
		// included, and then the figures say nothing about the
		// adaptive limit.
		if ctl := s.Hardened.Values["static slow-tuned goodput, slow"]; s.Name == "capacity-drop" && ctl < 0.5*newDropPlan(true).capacity() {
			t.Skipf("the machine starved the control: static slow-tuned served %.0f req/s in the slow phase", ctl)
		}
	}
	for _, s := range res.Scenarios {
		for _, f := range s.Figures {
			assert.False(t, math.IsNaN(f.Hardened), "%s/%s measured", s.Name, f.Name)
		}
		switch s.Name {
		case "capacity-drop":
			h, n := s.Hardened.Values, s.Naive.Values
			slow := func(v string) float64 { return h[v+" goodput, slow"] }
			assert.Less(t, n["naive goodput, slow"], 0.5*slow("adaptive"), "the naive service collapses")
			assert.Less(t, slow("static fast-tuned"), 0.5*slow("static slow-tuned"), "the fast-tuned cap loses the slow phase")
			assert.Greater(t, slow("adaptive"), 2*slow("static fast-tuned"), "the adaptive limit follows the slow phase")
			assert.Greater(t, h["adaptive goodput, fast"], 0.7*h["static fast-tuned goodput, fast"])
			assert.Len(t, s.Figures, 4)
		case "priority":
			f := s.Figures[0]
			require.Equal(t, "critical success", f.Name)
			assert.Greater(t, f.Hardened, 95.0)
			assert.Greater(t, f.Hardened, f.Naive+40)
			st, ok := s.Hardened.GarrisonStats.(limiter.AdaptiveStats)
			require.True(t, ok)
			assert.Positive(t, st.RejectedSheddable, "the sheddable flood was refused")
		}
	}
}

// TestLegendForDefinesOnlyWordsInUse: a one-scenario run's legend defines
// its rows' words, continuation lines included, and none of the others'.
func TestLegendForDefinesOnlyWordsInUse(t *testing.T) {
	r := &Result{Scenarios: []ScenarioResult{{Figures: []Figure{{Name: "critical p99"}, {Name: "legit p99, fds ample"}}}}}
	got := strings.Join(legendFor(r), "\n")
	assert.Contains(t, got, "critical   =")
	assert.Contains(t, got, "fds ample  =")
	assert.Contains(t, got, "legit p50, legit p99 =")
	assert.NotContains(t, got, "fds capped")
	assert.NotContains(t, got, "goodput")
	r = &Result{Scenarios: []ScenarioResult{{Figures: []Figure{{Name: "legit success"}}}}}
	got = strings.Join(legendFor(r), "\n")
	assert.Contains(t, got, "legit      =")
	assert.Contains(t, got, "unless the scenario's notes say otherwise", "a definition keeps its continuation line")
	assert.NotContains(t, got, "critical")
}
