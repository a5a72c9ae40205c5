// Command probe is a legitimate user measured during an attack: it sends
// one request every -every from -src, each on a new connection (a new
// visitor), for -for, and prints how many succeeded and how fast. It exits
// 1 when fewer than -min percent succeeded, so a CI check can use it as
// its verdict.
//
//	go run ./examples/internal/probe -url http://127.0.0.1:8080/healthz -src 127.0.0.2 -for 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "what to GET (required)")
	src := flag.String("src", "", "source address to bind (default: the kernel's choice)")
	every := flag.Duration("every", 50*time.Millisecond, "one request per period")
	timeout := flag.Duration("timeout", time.Second, "how long a user waits for an answer")
	dur := flag.Duration("for", 30*time.Second, "how long to probe")
	minPct := flag.Float64("min", 99, "exit 1 if fewer than this percentage of requests succeeded (2xx)")
	label := flag.String("label", "legit", "label of the output line")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "probe: -url is required")
		os.Exit(2)
	}
	res, err := probe(*url, *src, *every, *timeout, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(2)
	}
	fmt.Println(res.line(*label))
	if res.pct() < *minPct {
		fmt.Printf("%s: FAIL: %.2f %% served, need %.2f %%\n", *label, res.pct(), *minPct)
		os.Exit(1)
	}
}

type result struct {
	n, ok    int
	failures map[string]int
	lat      []float64 // ms; a failure counts as the full timeout
}

func (r *result) pct() float64 {
	if r.n == 0 {
		return 0
	}
	return 100 * float64(r.ok) / float64(r.n)
}

func (r *result) line(label string) string {
	s := fmt.Sprintf("%s: %d requests, %d served (%.2f %%), p50 %.1f ms, p99 %.1f ms", label, r.n, r.ok, r.pct(), percentile(r.lat, .50), percentile(r.lat, .99))
	for why, n := range r.failures {
		s += fmt.Sprintf("; %d× %s", n, why)
	}
	return s
}

func probe(url, src string, every, timeout, dur time.Duration) (*result, error) {
	d := &net.Dialer{Timeout: timeout}
	if src != "" {
		ip := net.ParseIP(src)
		if ip == nil {
			return nil, fmt.Errorf("-src %q is not an IP address", src)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: timeout}

	r := &result{failures: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return r, nil
		case <-t.C:
		}
		wg.Go(func() {
			t0 := time.Now()
			why := get(c, url)
			l := float64(time.Since(t0)) / float64(time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			r.n++
			if why == "" {
				r.ok++
			} else {
				r.failures[why]++
				l = float64(timeout) / float64(time.Millisecond)
			}
			r.lat = append(r.lat, l)
		})
	}
}

// get returns "" on a 2xx answer read to the end, else why not.
func get(c *http.Client, url string) string {
	resp, err := c.Get(url)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return "error"
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "body error"
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	return ""
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}
