package siege

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// client is an HTTP client bound to one loopback source address, so the
// hardened service can tell attackers (127.0.0.2 and up) from legitimate
// users (127.0.0.1) the way it would tell two hosts apart.
type client struct {
	hc *http.Client
	tr *http.Transport
}

func newClient(src netip.Addr, keepAlive bool, maxConns int, timeout time.Duration) *client {
	d := &net.Dialer{Timeout: timeout}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		DisableKeepAlives:   !keepAlive,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		Proxy:               nil,
	}
	return &client{hc: &http.Client{Transport: tr, Timeout: timeout}, tr: tr}
}

func (c *client) close() { c.tr.CloseIdleConnections() }

// result of one request: status 0 means no HTTP answer at all.
func (c *client) do(ctx context.Context, method, url string) (status int, err error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}

func is2xx(status int) bool { return status >= 200 && status < 300 }

// legit sends one request every period until ctx ends, each from a fresh
// connection (a new visitor), without waiting for the previous one: a hung
// service must not slow the sampling down. It returns once every request
// has finished, which the client timeout bounds.
func legit(ctx context.Context, c *client, start time.Time, period time.Duration, method, url string) []Sample {
	return legitEach(ctx, []*client{c}, start, period, method, func(int) string { return url })
}

// legitEach is legit with the i-th request sent to url(i) by cs[i%len(cs)].
func legitEach(ctx context.Context, cs []*client, start time.Time, period time.Duration, method string, url func(i int) string) []Sample {
	var (
		mu      sync.Mutex
		samples []Sample
		wg      sync.WaitGroup
	)
	t := time.NewTicker(period)
	defer t.Stop()
	for i := 0; ; {
		select {
		case <-ctx.Done():
			wg.Wait()
			return samples
		case <-t.C:
		}
		u, c := url(i), cs[i%len(cs)]
		i++
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			// Not ctx: a request in flight when the attack ends still
			// gets its full client timeout to be answered.
			status, err := c.do(context.Background(), method, u)
			s := Sample{
				AtMS:      ms(t0.Sub(start)),
				LatencyMS: ms(time.Since(t0)),
				Answered:  err == nil,
				OK:        err == nil && is2xx(status),
				Status:    status,
			}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		}()
	}
}

// AttackStats counts an HTTP attack's requests by outcome.
type AttackStats struct {
	Sent     int64 `json:"sent"`
	OK       int64 `json:"ok"`
	Rejected int64 `json:"rejected"` // 429 or 503: refused on purpose
	Other    int64 `json:"other"`    // any other HTTP answer
	NoAnswer int64 `json:"no_answer"`
	Skipped  int64 `json:"skipped"` // not sent before the attack's time bound
}

func (a *AttackStats) record(status int, err error) {
	switch {
	case err != nil:
		atomic.AddInt64(&a.NoAnswer, 1)
	case is2xx(status):
		atomic.AddInt64(&a.OK, 1)
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		atomic.AddInt64(&a.Rejected, 1)
	default:
		atomic.AddInt64(&a.Other, 1)
	}
}

// flood sends limit requests round-robin over clients, at most rate per
// second, with workers requests in flight at most, and stops early only if
// ctx ends (the requests it could not send are counted as skipped). The
// attacker's own footprint (workers goroutines and their connections) is
// fixed and the same against both twins, so the process's goroutine and
// heap peaks differ only by what the twin itself holds. The schedule
// follows the clock: ticks missed while the victim starves this process's
// CPU are made up at the next one.
func flood(ctx context.Context, clients []*client, rate, workers, limit int, method string, url func(i int) string) *AttackStats {
	st := &AttackStats{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				st.record(clients[i%len(clients)].do(context.Background(), method, url(i)))
			}
		})
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	i := 0
send:
	for i < limit {
		select {
		case <-ctx.Done():
			break send
		case <-t.C:
		}
		for due := min(limit, int(float64(rate)*time.Since(start).Seconds())); i < due; i++ {
			select {
			case jobs <- i:
				st.Sent++
			case <-ctx.Done():
				break send
			}
		}
	}
	close(jobs)
	wg.Wait()
	st.Skipped = int64(limit - i)
	return st
}

// hammer runs workers closed loops (each waits for its answer before the
// next request) until ctx ends or limit requests were sent.
func hammer(ctx context.Context, clients []*client, workers, limit int, req func(i int) (method, url string)) *AttackStats {
	st := &AttackStats{}
	hammerInto(ctx, st, clients, workers, limit, req)
	return st
}

// hammerInto is hammer counting into st, which may be read atomically
// while it runs.
func hammerInto(ctx context.Context, st *AttackStats, clients []*client, workers, limit int, req func(i int) (method, url string)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := clients[w%len(clients)]
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= limit {
					return
				}
				atomic.AddInt64(&st.Sent, 1)
				m, u := req(i)
				st.record(c.do(context.Background(), m, u))
			}
		})
	}
	wg.Wait()
}

// SlowStats describes a connection flood.
type SlowStats struct {
	Dials          int64 `json:"dials"`
	DialErrors     int64 `json:"dial_errors"`
	ClosedByServer int64 `json:"closed_by_server"`
	HeldAtEnd      int64 `json:"held_at_end"`
	PeakHeld       int64 `json:"peak_held"`
	// ServerHeldAtEnd is how many connections the server process had
	// accepted and not closed when the attack ended (legit ones included):
	// a connection the kernel still holds (TCP_DEFER_ACCEPT, the accept
	// backlog) costs the process nothing.
	ServerHeldAtEnd int64 `json:"server_held_at_end"`
}

// slowloris opens conns connections from srcs to addr at once (the burst),
// half of them silent and half trickling a never-ending header a few bytes
// at a time, and holds them until ctx ends. Like the real tool it redials
// when the server drops it, after a pause, at most limit dials in total.
func slowloris(ctx context.Context, addr string, srcs []netip.Addr, conns, limit int, trickle, redial time.Duration, serverHeld func() int64) *SlowStats {
	st := &SlowStats{}
	var held atomic.Int64
	var dials atomic.Int64
	var wg sync.WaitGroup
	for k := range conns {
		wg.Go(func() {
			d := net.Dialer{Timeout: time.Second}
			if src := srcs[k%len(srcs)]; src.IsValid() {
				d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
			}
			silent := k%2 == 0
			buf := make([]byte, 512)
			for ctx.Err() == nil && dials.Add(1) <= int64(limit) {
				atomic.AddInt64(&st.Dials, 1)
				conn, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					atomic.AddInt64(&st.DialErrors, 1)
					if !sleepCtx(ctx, redial) {
						return
					}
					continue
				}
				h := held.Add(1)
				for {
					p := atomic.LoadInt64(&st.PeakHeld)
					if h <= p || atomic.CompareAndSwapInt64(&st.PeakHeld, p, h) {
						break
					}
				}
				closed := holdConn(ctx, conn, silent, trickle, buf)
				_ = conn.Close()
				held.Add(-1)
				if !closed {
					return
				}
				atomic.AddInt64(&st.ClosedByServer, 1)
				if !sleepCtx(ctx, redial) {
					return
				}
			}
		})
	}
	<-ctx.Done()
	// Counted before the goroutines close their connections.
	st.HeldAtEnd = held.Load()
	st.ServerHeldAtEnd = serverHeld()
	wg.Wait()
	return st
}

// holdConn keeps conn open, writing a header line every trickle unless
// silent, until ctx ends (false) or the server closes it (true).
func holdConn(ctx context.Context, conn net.Conn, silent bool, trickle time.Duration, buf []byte) (closedByServer bool) {
	if !silent {
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: siege\r\n"); err != nil {
			return true
		}
	}
	for ctx.Err() == nil {
		// A short read deadline doubles as the trickle clock: a timeout
		// means the server still holds the connection open.
		_ = conn.SetReadDeadline(time.Now().Add(trickle))
		_, err := conn.Read(buf)
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return true
		}
		if !silent {
			if _, err := io.WriteString(conn, "X-a: b\r\n"); err != nil {
				return true
			}
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
