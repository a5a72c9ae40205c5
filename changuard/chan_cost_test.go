package changuard

import (
	"context"
	"testing"

	"github.com/garrison-go/garrison/internal/costbench"
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
	rawOp := func() uint64 {
		raw <- 1
		<-raw
		return 0
	}
	c, err := NewChan[int](1024)
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		op   func() uint64
	}{
		{"Chan", func() uint64 {
			_ = c.Send(ctx, 1)
			_, _ = c.Recv(ctx)
			return 0
		}},
		{"NoCtxRule", func() uint64 {
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
			return 0
		}},
		{"NoCount", func() uint64 {
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
			return 0
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			costbench.Ratio(b, 2048, rawOp, v.op, "×raw")
		})
	}
}
