package limiter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/garrison-go/garrison/internal/ctxerr"
)

// LoadProbe is one signal of how loaded the service is: Load returns 0 when
// idle and 1 at saturation (it may return more). Typical probes: in flight
// over the concurrency limit, queue length over queue capacity, queue delay
// over its target. Load must be cheap and safe for concurrent use.
type LoadProbe struct {
	Name string // a stable label, reported as the cause of unreadiness
	Load func() float64
}

// Readiness tells load balancers when this instance is overloaded, so that
// they move traffic to its peers before it fails instead of after: the
// threat model's "load balancers to distribute incoming traffic across
// multiple instances" only helps when the balancer knows.
//
// It is ready while every probe's load stays below the high mark, turns
// unready when one has stayed at it for [WithMinOverload], and turns ready
// again only when every load has fallen to the low mark and none has
// reached the high mark for [WithMinUnready] (hysteresis in load and in
// time, so that an instance at the edge does not flap in and out of
// rotation). Its state is computed when asked
// (a health check, an agent check), with no goroutine of its own.
//
// [Readiness.Handler] answers HTTP readiness probes (Kubernetes, most load
// balancers); [Readiness.ServeAgent] answers HAProxy's agent-check with a
// weight that falls as the load rises, and "drain" when unready.
type Readiness struct {
	probes      []LoadProbe
	high, low   float64
	minUnready  time.Duration
	minOverload time.Duration

	mu        sync.Mutex
	ready     bool
	cause     string
	lastHigh  time.Time // the last Check that saw a load at the high mark
	highSince time.Time // first Check of the current run at the high mark; zero after a lower one

	becameUnready, becameReady, agentAnswers atomic.Uint64
}

// WithMinUnready sets how long the instance stays unready after the last
// check that saw a load at the high mark (default 2s), even if the load has
// fallen since: a drained instance's load falls at once because it gets no
// traffic, and without a hold it would flap in and out of rotation at the
// balancer's check interval. 0 turns the hold off.
func WithMinUnready(d time.Duration) ReadinessOption {
	return func(r *Readiness) error {
		if d < 0 {
			return fmt.Errorf("limiter: WithMinUnready(%v): negative", d)
		}
		r.minUnready = d
		return nil
	}
}

// WithMinOverload sets how long the load must stay at the high mark (seen
// by every check in between) before the instance turns unready (default
// 1s): a burst, or the refusals of a limit still warming up, must not take
// an instance out of rotation, least of all every instance at once. 0
// turns unready on the first check at the high mark.
func WithMinOverload(d time.Duration) ReadinessOption {
	return func(r *Readiness) error {
		if d < 0 {
			return fmt.Errorf("limiter: WithMinOverload(%v): negative", d)
		}
		r.minOverload = d
		return nil
	}
}

// ReadinessOption configures [NewReadiness].
type ReadinessOption func(*Readiness) error

// WithHysteresis sets the load at which the instance turns unready (high,
// default 0.9) and the load under which it turns ready again (low, default
// 0.7). It needs 0 < low < high.
func WithHysteresis(high, low float64) ReadinessOption {
	return func(r *Readiness) error {
		if !(low > 0 && low < high) || math.IsInf(high, 0) || math.IsNaN(high) {
			return fmt.Errorf("limiter: WithHysteresis(%v, %v): need 0 < low < high, both finite", high, low)
		}
		r.high, r.low = high, low
		return nil
	}
}

// NewReadiness returns a Readiness over probes, ready until a probe says
// otherwise. It needs at least one probe, each with a name and a Load.
func NewReadiness(probes []LoadProbe, opts ...ReadinessOption) (*Readiness, error) {
	if len(probes) == 0 {
		return nil, errors.New("limiter: NewReadiness: no LoadProbe")
	}
	for i, p := range probes {
		if p.Name == "" || p.Load == nil {
			return nil, fmt.Errorf("limiter: NewReadiness: probe %d needs a Name and a Load", i)
		}
	}
	r := &Readiness{probes: append([]LoadProbe(nil), probes...), high: 0.9, low: 0.7, minUnready: 2 * time.Second, minOverload: time.Second, ready: true}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("limiter: NewReadiness: nil ReadinessOption")
		}
		if err := opt(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// ReadinessState is one answer of [Readiness.Check].
type ReadinessState struct {
	Ready bool
	// Load is the highest probe load (NaN and negative loads count as 0).
	Load float64
	// Cause names the probe with the highest load.
	Cause string
}

// Check reads every probe and moves the state through the hysteresis.
func (r *Readiness) Check() ReadinessState {
	load, cause := 0.0, r.probes[0].Name
	for _, p := range r.probes {
		if v := p.Load(); v > load { // NaN compares false: counts as 0
			load, cause = v, p.Name
		}
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if load >= r.high {
		r.lastHigh = now
		if r.highSince.IsZero() {
			r.highSince = now
		}
	} else {
		r.highSince = time.Time{}
	}
	switch {
	case r.ready && load >= r.high && now.Sub(r.highSince) >= r.minOverload:
		r.ready, r.cause = false, cause
		r.becameUnready.Add(1)
	case !r.ready && load <= r.low && now.Sub(r.lastHigh) >= r.minUnready:
		r.ready, r.cause = true, ""
		r.becameReady.Add(1)
	case !r.ready:
		r.cause = cause
	}
	return ReadinessState{Ready: r.ready, Load: load, Cause: cause}
}

// Weight is the share of traffic, in percent from 1 to 100, that the
// instance asks for in state s: 100 up to the low mark, falling linearly to
// 10 at the high mark, so that a balancer moves traffic away gradually
// before it has to drain the instance.
func (r *Readiness) Weight(s ReadinessState) int {
	switch {
	case s.Load <= r.low:
		return 100
	case s.Load >= r.high:
		return 10
	default:
		return int(math.Round(100 - 90*(s.Load-r.low)/(r.high-r.low)))
	}
}

// Handler answers readiness probes: 200 while ready, 503 Service
// Unavailable while unready, with a small JSON body naming the load and its
// cause, and Cache-Control: no-store.
func (r *Readiness) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := r.Check()
		status := http.StatusOK
		if !s.Ready {
			status = http.StatusServiceUnavailable
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(struct {
			Ready  bool    `json:"ready"`
			Load   float64 `json:"load"`
			Cause  string  `json:"cause"`
			Weight int     `json:"weight"`
		}{s.Ready, finite(s.Load), s.Cause, r.Weight(s)})
	})
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// AgentReply is the line [Readiness.ServeAgent] sends for s, in HAProxy's
// agent-check protocol: "ready N%" (leave drain mode, weight N % of the
// configured weight) while ready, "drain" while unready (no new traffic;
// connections in progress finish).
func (r *Readiness) AgentReply(s ReadinessState) string {
	if !s.Ready {
		return "drain\n"
	}
	return "ready " + strconv.Itoa(r.Weight(s)) + "%\n"
}

// agentWriteTimeout bounds how long one agent connection may hold the loop.
const agentWriteTimeout = time.Second

// ServeAgent answers HAProxy agent checks on ln until ctx is done (it then
// closes ln and returns nil) or ln fails. Each connection gets one line
// (see [Readiness.AgentReply]) and is closed; anything HAProxy sends
// (agent-send) is ignored. Connections are answered one at a time in this
// goroutine, each bounded by a one-second write deadline, so a client that
// never reads cannot hold more than that, and nothing is left running when
// ServeAgent returns. Bind ln to loopback or a management network: the
// reply tells whoever connects how loaded the instance is.
func (r *Readiness) ServeAgent(ctx context.Context, ln net.Listener) error {
	if err := ctxerr.Check(ctx); err != nil {
		return fmt.Errorf("limiter: ServeAgent: %w", err)
	}
	if ln == nil {
		return errors.New("limiter: ServeAgent: nil listener")
	}
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("limiter: ServeAgent: %w", err)
		}
		_ = c.SetWriteDeadline(time.Now().Add(agentWriteTimeout))
		if _, err := c.Write([]byte(r.AgentReply(r.Check()))); err == nil {
			r.agentAnswers.Add(1)
		}
		_ = c.Close()
	}
}

// ReadinessStats counts what a [Readiness] decided.
type ReadinessStats struct {
	Ready         bool
	Cause         string // the probe that made it unready; "" while ready
	BecameUnready uint64
	BecameReady   uint64
	AgentAnswers  uint64 // agent-check lines sent
}

// Stats returns a snapshot without reading the probes.
func (r *Readiness) Stats() ReadinessStats {
	r.mu.Lock()
	ready, cause := r.ready, r.cause
	r.mu.Unlock()
	return ReadinessStats{
		Ready:         ready,
		Cause:         cause,
		BecameUnready: r.becameUnready.Load(),
		BecameReady:   r.becameReady.Load(),
		AgentAnswers:  r.agentAnswers.Load(),
	}
}
