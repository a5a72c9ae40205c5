package changuard

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkChanCost splits what a Chan adds to a raw channel on the
// parallel benchmark of bench/changuard (every goroutine sends one value
// and receives one on a shared channel), as ratios to the raw channel
// taken in alternating chunks of one benchmark:
//
//   - Chan: Send and Recv as they are;
//   - NoCtxRule: the same without the two checks for a ctx already done
//     (the rule every blocking method of the project follows);
//   - NoCount: the ctx checks and the non-blocking channel operations
//     without the count of senders in flight, which is what lets Close
//     close the channel without a sender ever panicking (two atomic
//     adds per send on the sender's stripe).
//
// NoCtxRule and NoCount are not safe Chans; they exist to measure.
//
//	go test -run '^$' -bench ChanCost -benchtime 400x -count 3 ./changuard
func BenchmarkChanCost(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	raw := make(chan int, 1024)
	rawOp := func() {
		raw <- 1
		<-raw
	}
	c, err := NewChan[int](1024)
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		op   func()
	}{
		{"Chan", func() {
			_ = c.Send(ctx, 1)
			_, _ = c.Recv(ctx)
		}},
		{"NoCtxRule", func() {
			s := c.stripe()
			if c.enter(s) {
				select {
				case c.ch <- 1:
					c.exitSent(s)
				default:
					c.exit(s)
				}
			} else {
				c.exit(s)
			}
			select {
			case <-c.ch:
			default:
			}
		}},
		{"NoCount", func() {
			if ctx.Err() == nil {
				select {
				case c.ch <- 1:
				default:
				}
			}
			if ctx.Err() == nil {
				select {
				case <-c.ch:
				default:
				}
			}
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			var ratios []float64
			for i := 0; b.Loop(); i++ {
				first, second := rawOp, v.op
				if i%2 == 1 {
					first, second = second, first
				}
				d1, d2 := costChunk(2048, first), costChunk(2048, second)
				if i%2 == 1 {
					d1, d2 = d2, d1
				}
				ratios = append(ratios, d2/d1)
			}
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "×raw")
		})
	}
}

// costChunk runs op n times on each of GOMAXPROCS goroutines at once and
// returns the wall time per call in nanoseconds.
func costChunk(n int, op func()) float64 {
	p := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range p {
		wg.Go(func() {
			<-start
			for range n {
				op()
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return float64(time.Since(t0)) / float64(n*p)
}
