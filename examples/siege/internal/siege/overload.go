package siege

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The overload scenarios (capacity-drop, priority) attack neither twin's
// code paths but its admission control: each runs a small service whose
// one endpoint calls a modelled database, once bare (the naive twin) and
// once behind garrison's middleware (the hardened twin), and offers it more
// work than the database can do.

// database models the dependency of the overload scenarios: every query
// first crosses a link (a delay, which a phase may raise tenfold: a
// failover to a distant replica), then waits for one of a few workers,
// which take a fixed time per query, first come first served. A query
// whose caller gave up is still executed, as a real database executes a
// query whose client went away: a queue deeper than the callers' deadline
// turns every query into wasted work. The capacity is workers/work
// queries per second, whatever the delay.
type database struct {
	delay   atomic.Int64 // ns
	work    time.Duration
	workers chan struct{}
	queued  sync.WaitGroup // queries still held by the database
	stopped chan struct{}  // closed by stop: queued queries are dropped
	once    sync.Once
}

// stop drops the queries still queued (the scenario is over; nobody waits
// for them) and returns once none is held.
func (d *database) stop() {
	d.once.Do(func() { close(d.stopped) })
	d.queued.Wait()
}

func newDatabase(workers int, work, delay time.Duration) *database {
	d := &database{work: work, workers: make(chan struct{}, workers), stopped: make(chan struct{})}
	d.delay.Store(int64(delay))
	return d
}

func (d *database) setDelay(v time.Duration) { d.delay.Store(int64(v)) }

// query runs one query and reports whether its result reached the caller
// before ctx ended.
func (d *database) query(ctx context.Context) error {
	t := time.NewTimer(time.Duration(d.delay.Load()))
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
	done := make(chan struct{})
	d.queued.Add(1)
	go func() {
		defer d.queued.Done()
		select {
		case d.workers <- struct{}{}: // a Go channel's senders are served in order
		case <-d.stopped:
			return
		}
		time.Sleep(d.work)
		<-d.workers
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// overloadService is the one-endpoint service of the overload scenarios.
type overloadService struct {
	url  string
	srv  *http.Server
	done chan struct{}
}

// startOverloadService serves GET / with one database query per request,
// bounded by deadline, wrapped by mw (nil: bare). A query that missed the
// deadline is answered 504 Gateway Timeout.
func startOverloadService(db *database, deadline time.Duration, mw func(http.Handler) http.Handler) (*overloadService, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), deadline)
		defer cancel()
		if err := db.query(ctx); err != nil {
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if mw != nil {
		h = mw(h)
	}
	s := &overloadService{url: "http://" + ln.Addr().String() + "/", srv: &http.Server{Handler: h, ReadHeaderTimeout: time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *overloadService) close() {
	_ = s.srv.Close()
	<-s.done
}

// stream is one open-loop source of requests: rate per second from src,
// with header values set on every request, each abandoned at deadline.
type stream struct {
	src    netip.Addr
	rate   int
	header http.Header
}

// openLoop sends every stream's requests at its rate, whatever the service
// answers (open loop: users do not slow down because a service is slow),
// for d, and returns one Sample per request, the client deadline counting
// as no answer. Bounded: rate × d requests per stream, each ending at its
// deadline.
func openLoop(ctx context.Context, url string, start time.Time, d, deadline time.Duration, streams []stream) [][]Sample {
	out := make([][]Sample, len(streams))
	var wg sync.WaitGroup
	for i, st := range streams {
		c := newClient(st.src, true, 1024, deadline)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			var (
				mu      sync.Mutex
				samples []Sample
				reqs    sync.WaitGroup
			)
			n := int(float64(st.rate) * d.Seconds())
			period := time.Second / time.Duration(st.rate)
			t0 := time.Now()
			for k := range n {
				// Paced from t0, not from the last send: a late tick is
				// caught up, so the offered rate holds on a busy machine.
				if wait := time.Until(t0.Add(time.Duration(k) * period)); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
					}
				}
				if ctx.Err() != nil {
					break
				}
				reqs.Add(1)
				go func() {
					defer reqs.Done()
					at := time.Now()
					status, err := c.doHeader(context.Background(), url, st.header)
					s := Sample{
						AtMS:      ms(at.Sub(start)),
						LatencyMS: ms(time.Since(at)),
						Answered:  err == nil,
						OK:        err == nil && is2xx(status),
						Status:    status,
					}
					mu.Lock()
					samples = append(samples, s)
					mu.Unlock()
				}()
			}
			reqs.Wait()
			out[i] = samples
		}()
	}
	wg.Wait()
	return out
}

// doHeader is do with request headers.
func (c *client) doHeader(ctx context.Context, url string, h http.Header) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}

// goodput is the number of requests started in [from, to) ms that
// succeeded, per second.
func goodput(samples []Sample, from, to float64) float64 {
	n := 0
	for _, s := range samples {
		if s.OK && s.AtMS >= from && s.AtMS < to {
			n++
		}
	}
	return float64(n) / ((to - from) / 1000)
}

// dropPlan sizes the capacity-drop scenario.
type dropPlan struct {
	workers  int           // database workers
	work     time.Duration // per query per worker
	fast     time.Duration // link delay in the fast phases
	slow     time.Duration // link delay in the slow phase
	phase    time.Duration // each of fast, slow, fast again
	rate     int           // requests offered per second, all phases
	deadline time.Duration // each request's, client and server side
	fastCap  int           // the static cap tuned for the fast phase
	slowCap  int           // the static cap tuned for the slow phase
	maxLimit int           // the adaptive limit's Max
}

// capacity is what the database can do, in queries per second.
func (p dropPlan) capacity() float64 { return float64(p.workers) / p.work.Seconds() }

// runDrop offers the plan's load to a service wrapped by mw (nil: bare)
// while the database's link slows down tenfold and recovers, and returns
// every request's sample.
func runDrop(ctx context.Context, p dropPlan, mw func(http.Handler) http.Handler) ([]Sample, error) {
	db := newDatabase(p.workers, p.work, p.fast)
	svc, err := startOverloadService(db, p.deadline, mw)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	phases := make(chan struct{})
	go func() {
		defer close(phases)
		for i, d := range []time.Duration{p.slow, p.fast} {
			select {
			case <-time.After(time.Until(start.Add(time.Duration(i+1) * p.phase))):
			case <-ctx.Done():
				return
			}
			db.setDelay(d)
		}
	}()
	out := openLoop(ctx, svc.url, start, 3*p.phase, p.deadline, []stream{{src: netip.MustParseAddr("127.0.0.1"), rate: p.rate}})
	<-phases
	svc.close()
	db.stop()
	return out[0], nil
}
