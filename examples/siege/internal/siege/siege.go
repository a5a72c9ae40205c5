// Package siege runs the attacks of garrison's threat model against a naive
// Go service and against the same service built with garrison, both in this
// process on loopback ports, and compares measured figures side by side.
//
// Every attack is bounded in time and in count, targets only 127.0.0.x, and
// stops by itself. Legitimate traffic comes from 127.0.0.1 and attacks from
// 127.0.0.2 and up, so per-address limits can tell them apart as they would
// tell two hosts apart.
package siege

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/garrison-go/garrison/examples/internal/work"
	"github.com/garrison-go/garrison/lockorder"
)

// Options configures Run.
type Options struct {
	// Quick shortens every attack (about 40 s in all) for CI.
	Quick bool
	// Scenario restricts the run to one scenario (see Names); "" runs all.
	Scenario string
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
	// Log receives the hardened twin's log (sampled refusals, lock-order
	// and watchdog reports, as an operator would see them); nil discards
	// it.
	Log io.Writer

	// only, if not nil, selects scenarios by name (tests).
	only func(name string) bool
	// tweak, if not nil, adjusts the plan (tests shorten attacks).
	tweak func(*plan)
}

// Result is everything one run measured.
type Result struct {
	Machine     string           `json:"machine"`
	CPUs        int              `json:"cpus"`
	GOMAXPROCS  int              `json:"gomaxprocs"`
	GoVersion   string           `json:"go_version"`
	Platform    string           `json:"platform"`
	Quick       bool             `json:"quick"`
	Started     time.Time        `json:"started"`
	WallSeconds float64          `json:"wall_seconds"`
	Notes       []string         `json:"notes,omitempty"`
	Scenarios   []ScenarioResult `json:"scenarios"`
	// OK is true when every hardened figure beats its naive twin.
	OK bool `json:"ok"`
}

// ScenarioResult is one attack run against both twins.
type ScenarioResult struct {
	Name   string `json:"name"`
	Title  string `json:"title"`
	Threat string `json:"threat"`
	// Defence is what the hardened twin does against the threat, in one
	// line.
	Defence  string      `json:"defence"`
	Naive    *SideResult `json:"naive"`
	Hardened *SideResult `json:"hardened"`
	Figures  []Figure    `json:"figures"`
	Notes    []string    `json:"notes,omitempty"`
	OK       bool        `json:"ok"`
}

// SideResult is what one twin went through in one scenario.
type SideResult struct {
	Legit     []Sample `json:"legit"`
	LegitWhat string   `json:"legit_request"`
	// PatienceMS is how long the legitimate user waits for an answer: a
	// request without one is counted at this latency.
	PatienceMS float64 `json:"patience_ms"`
	// Phases, when the attack changes during the run, names each part of
	// it on the time axis of Legit and Series.
	Phases []Phase `json:"phases,omitempty"`
	// Deposits, in the race scenario, counts the deposits acknowledged to
	// clients and recorded in the billing counters as the attack went.
	Deposits       []DepositPoint     `json:"deposits,omitempty"`
	Series         []Point            `json:"series"`
	PeakGoroutines int                `json:"peak_goroutines"`
	PeakHeapMiB    float64            `json:"peak_heap_mib"`
	Attack         *AttackStats       `json:"attack,omitempty"`
	Conns          *SlowStats         `json:"conns,omitempty"`
	Values         map[string]float64 `json:"values,omitempty"`
	Notes          []string           `json:"notes,omitempty"`
	GarrisonStats  any                `json:"garrison_stats,omitempty"`
}

// Phase is one part of an attack that changes as it runs, in ms since the
// twin started.
type Phase struct {
	Name   string  `json:"name"`
	FromMS float64 `json:"from_ms"`
	ToMS   float64 `json:"to_ms"`
}

// DepositPoint is one reading of the race scenario's two counts: their
// difference is the updates lost so far.
type DepositPoint struct {
	AtMS         float64 `json:"at_ms"`
	Acknowledged int64   `json:"acknowledged"`
	Recorded     int64   `json:"recorded"`
}

// Figure compares one measured quantity between the twins.
type Figure struct {
	Name     string  `json:"name"`
	Unit     string  `json:"unit"`
	Naive    float64 `json:"naive"`
	Hardened float64 `json:"hardened"`
	// Better is "lower" or "higher".
	Better string `json:"better"`
	// Ideal is the best possible value; when TieOK, both twins reaching
	// it counts as holding (a naive service may answer every legitimate
	// request of a mild attack), and when Required the hardened twin must
	// reach it (zero lost updates, not merely fewer).
	Ideal    float64 `json:"ideal,omitempty"`
	TieOK    bool    `json:"-"`
	Required bool    `json:"-"`
	// Bound, when HasBound, is what the hardened twin must reach whatever
	// the naive twin did: at least Bound when Better is "higher", at most
	// when "lower". A figure within its bound holds even when the naive
	// twin did as well.
	Bound    float64 `json:"bound,omitempty"`
	HasBound bool    `json:"has_bound,omitempty"`
	Verdict  string  `json:"verdict"`
	OK       bool    `json:"ok"`
	// Why says, for a hardened figure short of the ideal, why it is and
	// whether that is by design; the table prints it under the row.
	Why string `json:"why,omitempty"`
}

func (f *Figure) judge() {
	hb := (f.Better == "lower" && f.Hardened < f.Naive) || (f.Better == "higher" && f.Hardened > f.Naive)
	switch {
	case math.IsNaN(f.Naive) || math.IsNaN(f.Hardened):
		f.Verdict, f.OK = "not measured", false
	case f.Required && f.Hardened != f.Ideal:
		f.Verdict, f.OK = fmt.Sprintf("FAIL: hardened must be %s", num(f.Ideal)), false
	case f.HasBound && f.Better == "higher" && f.Hardened < f.Bound:
		f.Verdict, f.OK = fmt.Sprintf("FAIL: hardened must be ≥ %s", num(f.Bound)), false
	case f.HasBound && f.Better == "lower" && f.Hardened > f.Bound:
		f.Verdict, f.OK = fmt.Sprintf("FAIL: hardened must be ≤ %s", num(f.Bound)), false
	case hb:
		f.Verdict, f.OK = "better", true
	case f.HasBound:
		op := "≥"
		if f.Better == "lower" {
			op = "≤"
		}
		f.Verdict, f.OK = fmt.Sprintf("within bound (%s %s)", op, num(f.Bound)), true
	case f.TieOK && f.Naive == f.Ideal && f.Hardened == f.Ideal:
		f.Verdict, f.OK = "equal (both ideal)", true
	default:
		f.Verdict, f.OK = "FAIL: not better", false
	}
}

// scenario is one attack with its two runs and its figures.
type scenario struct {
	Name, Title, Threat, Defence string
	run                          func(ctx context.Context, e *env, side string) (*SideResult, error)
	figures                      func(e *env, n, h *SideResult) []Figure
	notes                        func(e *env, n, h *SideResult) []string
}

// Names lists the scenarios in the order Run runs them.
func Names() []string {
	var ns []string
	for _, s := range scenarios() {
		ns = append(ns, s.Name)
	}
	return ns
}

// plan sizes the attacks. Each number bounds an attack by count or time.
type plan struct {
	attack       time.Duration // how long each attack lasts, per twin
	legitEvery   time.Duration // one legitimate request per period
	legitTimeout time.Duration // what a legitimate user waits at most
	spawnRate    int           // jobs requested per second
	slowConns    int           // connections held by the connection flood
	lockWorkers  int           // concurrent workers, half transferring, half auditing
	deposits     int           // deposits sent by 64 concurrent workers in the race
	chargeRate   int           // charges per second against the stuck upstream
	fdBudget     int           // file descriptors above the current use
	botnetCap    int           // the hardened twin's MaxConns in the botnet scenarios
	botnetPhase  time.Duration // each of the botnet's two phases, per twin
	kaPhase      time.Duration // the keep-alive scenario's attack
	h2Streams    int           // rapid-reset streams at most, per twin
	h2Phase      time.Duration // the rapid-reset attack, per twin
	drop         dropPlan      // the capacity-drop scenario
	prio         prioPlan      // the priority scenario
	keys         keysPlan      // the chosen-key scenario
}

func newPlan(quick bool, tweak func(*plan)) plan {
	p := plan{
		attack:       2500 * time.Millisecond,
		legitEvery:   20 * time.Millisecond,
		legitTimeout: time.Second,
		spawnRate:    1000,
		slowConns:    600,
		lockWorkers:  16,
		deposits:     1500,
		chargeRate:   150,
		fdBudget:     900,
		botnetCap:    botnetCap,
		botnetPhase:  4 * time.Second,
		kaPhase:      5 * time.Second,
		h2Streams:    2000000,
		h2Phase:      3 * time.Second,
	}
	if raceEnabled {
		// The race detector allows 8,128 live goroutines; the naive twin
		// spends one per attacker connection and the attacker one more.
		p.botnetCap = 24
	}
	if quick {
		p.botnetPhase = 2500 * time.Millisecond
		p.kaPhase = 3500 * time.Millisecond
		p.h2Streams = 1000000
		p.h2Phase = 2 * time.Second
		p.attack = 600 * time.Millisecond
		p.spawnRate = 600
		p.deposits = 400
	}
	p.drop, p.prio, p.keys = newDropPlan(quick), newPrioPlan(quick), newKeysPlan(quick)
	if tweak != nil {
		tweak(&p)
	}
	return p
}

// env is the state shared by the scenarios of one run.
type env struct {
	opts       Options
	p          plan
	job        work.Job
	lockPause  time.Duration
	checkPause time.Duration
	legitSrc   netip.Addr
	attackSrcs []netip.Addr
	notes      []string
	progress   io.Writer
	logger     *log.Logger

	// childReport makes lockReport use the child even when checking is
	// compiled in, so tests under -race cover the path `go run` takes.
	childReport bool
	child       *reportChild

	mu     sync.Mutex
	orders []string // lock-order reports seen while the hardened twin ran
}

// spawnJob is the background job of the spawn flood: it holds 64 KiB and
// waits a second for a downstream system, and hashes for as long as makes
// the flood offer 2.5 times the machine's CPU, measured on this machine,
// so that the attack overloads the naive twin whatever the CPU (a fixed
// round count was 2 ms of CPU on one VM and a third of that on another,
// where the naive twin did not notice the flood).
func spawnJob(p plan) work.Job {
	cpu := time.Duration(2.5 * float64(runtime.NumCPU()) * float64(time.Second) / float64(max(p.spawnRate, 1)))
	return work.Job{Size: 64 << 10, Rounds: work.RoundsFor(64<<10, cpu), Wait: time.Second}
}

func newEnv(opts Options) *env {
	e := &env{
		opts:       opts,
		p:          newPlan(opts.Quick, opts.tweak),
		job:        spawnJob(newPlan(opts.Quick, opts.tweak)),
		lockPause:  time.Millisecond,
		checkPause: 500 * time.Microsecond,
		progress:   opts.Progress,
	}
	// The hardened twin logs refusals and reports; the table says enough
	// unless the caller asks for the log.
	e.logger = log.New(io.Discard, "", 0)
	if opts.Log != nil {
		e.logger = log.New(opts.Log, "", log.LstdFlags)
	}
	if e.progress == nil {
		e.progress = io.Discard
	}
	e.legitSrc = netip.MustParseAddr("127.0.0.1")
	for i := 2; i <= 9; i++ {
		e.attackSrcs = append(e.attackSrcs, netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}))
	}
	if !canBind(e.attackSrcs[0]) {
		// macOS configures only 127.0.0.1: every client then shares one
		// address, and per-address limits cannot tell them apart.
		e.notes = append(e.notes, "127.0.0.2 cannot be bound here: attackers and legitimate users share 127.0.0.1, so per-address limits hit both")
		for i := range e.attackSrcs {
			e.attackSrcs[i] = e.legitSrc
		}
	}
	return e
}

func canBind(a netip.Addr) bool {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.progress, format+"\n", args...)
}

func (e *env) attackClients(keepAlive bool, timeout time.Duration, srcs []netip.Addr) []*client {
	var cs []*client
	for _, a := range srcs {
		cs = append(cs, newClient(a, keepAlive, 64, timeout))
	}
	return cs
}

func closeAll(cs []*client) {
	for _, c := range cs {
		c.close()
	}
}

// Run runs the selected scenarios against both twins and judges them. The
// naive twin runs first in each scenario, so its leftovers can only slow
// the hardened twin down, never help it.
func Run(ctx context.Context, opts Options) (*Result, error) {
	var selected []scenario
	for _, s := range scenarios() {
		if (opts.Scenario == "" || opts.Scenario == s.Name) && (opts.only == nil || opts.only(s.Name)) {
			selected = append(selected, s)
		}
	}
	if len(selected) == 0 {
		return nil, fmt.Errorf("siege: unknown scenario %q (have %s)", opts.Scenario, strings.Join(Names(), ", "))
	}
	e := newEnv(opts)
	restore := e.watchLockOrder()
	defer restore()
	for _, s := range selected {
		if s.Name == "deadlock" && !lockorder.Enabled() {
			bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			e.child = startReportBuild(bctx)
			defer e.child.close()
			defer cancel()
		}
	}

	if la, ok := loadAverage(); ok && la > float64(runtime.NumCPU()) {
		e.notes = append(e.notes, fmt.Sprintf("load average %.1f on %d CPUs when the siege started: other processes compete with both twins, so latencies are noisy; compare the twins within this run", la, runtime.NumCPU()))
	}
	start := time.Now()
	res := &Result{
		Machine:    cpuModel(),
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
		Quick:      opts.Quick,
		Started:    start.UTC(),
		OK:         true,
	}
	for _, sc := range selected {
		sr := ScenarioResult{Name: sc.Name, Title: sc.Title, Threat: sc.Threat, Defence: sc.Defence, OK: true}
		for _, side := range []string{"naive", "hardened"} {
			if err := ctx.Err(); err != nil {
				return nil, context.Cause(ctx)
			}
			settle(2 * time.Second)
			t0 := time.Now()
			r, err := sc.run(ctx, e, side)
			e.logf("siege: %5.1fs %-14s %-8s done in %.1fs", time.Since(start).Seconds(), sc.Name, side, time.Since(t0).Seconds())
			if err != nil {
				return nil, fmt.Errorf("siege: %s against %s: %w", sc.Name, side, err)
			}
			if r.PatienceMS == 0 {
				r.PatienceMS = ms(e.p.legitTimeout)
			}
			if side == "naive" {
				sr.Naive = r
			} else {
				sr.Hardened = r
			}
		}
		sr.Figures = sc.figures(e, sr.Naive, sr.Hardened)
		for i := range sr.Figures {
			sr.Figures[i].judge()
			sr.OK = sr.OK && sr.Figures[i].OK
		}
		if sc.notes != nil {
			sr.Notes = sc.notes(e, sr.Naive, sr.Hardened)
		}
		res.OK = res.OK && sr.OK
		res.Scenarios = append(res.Scenarios, sr)
	}
	res.Notes = e.notes
	res.WallSeconds = time.Since(start).Seconds()
	return res, nil
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// loadAverage returns the 1-minute load average where /proc has it.
func loadAverage() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	var la float64
	if _, err := fmt.Sscan(string(b), &la); err != nil {
		return 0, false
	}
	return la, true
}
