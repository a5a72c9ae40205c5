package changuard

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// FuzzChanModel runs a random sequence of operations on one goroutine
// against a slice-based model and checks every result and counter.
func FuzzChanModel(f *testing.F) {
	f.Add([]byte{0, 3, 0, 0, 0, 0, 1, 2, 3, 4, 0, 1, 2, 5})
	f.Add([]byte{1, 2, 1, 1, 1, 1, 1, 3, 3, 3, 4, 1, 5})
	f.Add([]byte{2, 1, 0, 1, 1, 1, 5, 4, 5, 5, 2})
	f.Add([]byte{3, 4, 1, 1, 1, 1, 1, 1, 2, 2, 4, 0, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) < 2 {
			return
		}
		policy := Overflow(ops[0] % 4)
		capacity := int(ops[1]%5) + 1
		var dropped []int
		c, err := NewChan(capacity, WithOverflow(policy, func(v int) { dropped = append(dropped, v) }))
		if err != nil {
			t.Fatal(err)
		}
		done, cancel := context.WithCancel(context.Background())
		cancel() // Send and Recv must not wait: a done ctx bounds them

		var model, modelDropped []int
		var want ChanStats
		want.Cap = capacity
		closed := false
		for i, op := range ops[2:] {
			v := i
			switch op % 6 {
			case 0, 1:
				var err error
				// A Send that would block gets a ctx already done, which
				// fails it at once; the others get one that never ends.
				blocks := op%6 == 1 && policy == Block && !closed && len(model) >= capacity
				switch {
				case op%6 == 0:
					err = c.TrySend(v)
				case blocks:
					err = c.Send(done, v)
				default:
					err = c.Send(context.Background(), v)
				}
				var ce *ClosedError[int]
				switch {
				case closed:
					if !errors.As(err, &ce) || ce.Value != v {
						t.Fatalf("op %d: send after close: %v", i, err)
					}
					want.Returned++
				case len(model) < capacity:
					if err != nil {
						t.Fatalf("op %d: send with room: %v", i, err)
					}
					model = append(model, v)
					want.Sent++
				case blocks:
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("op %d: want ctx error, got %v", i, err)
					}
					want.Canceled++
				default:
					want.FullEvents++
					switch {
					case op%6 == 0 || policy == Reject:
						if !errors.Is(err, ErrFull) {
							t.Fatalf("op %d: want ErrFull, got %v", i, err)
						}
						want.Rejected++
					case policy == DropOldest:
						if err != nil {
							t.Fatal(err)
						}
						modelDropped = append(modelDropped, model[0])
						model = append(model[1:], v)
						want.Sent++
						want.Dropped++
					case policy == DropNewest:
						if err != nil {
							t.Fatal(err)
						}
						modelDropped = append(modelDropped, v)
						want.Sent++
						want.Dropped++
					}
				}
			case 2:
				// As for Send: a ctx already done only where Recv would
				// block, since it fails Recv at once.
				rctx := context.Background()
				if len(model) == 0 && !closed {
					rctx = done
				}
				got, err := c.Recv(rctx)
				switch {
				case len(model) > 0:
					if err != nil || got != model[0] {
						t.Fatalf("op %d: Recv = %d, %v; want %d", i, got, err, model[0])
					}
					model = model[1:]
					want.Received++
				case closed:
					if !errors.Is(err, ErrClosed) {
						t.Fatalf("op %d: Recv on closed empty: %v", i, err)
					}
				default:
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("op %d: Recv on empty: %v", i, err)
					}
				}
			case 3:
				got, ok := c.TryRecv()
				if ok != (len(model) > 0) || ok && got != model[0] {
					t.Fatalf("op %d: TryRecv = %d, %v; model %v", i, got, ok, model)
				}
				if ok {
					model = model[1:]
					want.Received++
				}
			case 4:
				if (c.Close() == nil) == closed {
					t.Fatalf("op %d: Close reported %v twice", i, !closed)
				}
				closed = true
			case 5:
				got := c.Drain()
				if !slices.Equal(got, model) && len(got)+len(model) > 0 {
					t.Fatalf("op %d: Drain = %v, model %v", i, got, model)
				}
				want.Drained += uint64(len(model))
				model = nil
			}
			want.Len = len(model)
			if s := c.Stats(); s != want {
				t.Fatalf("op %d (%d): stats\n got %+v\nwant %+v", i, op%6, s, want)
			}
			if !slices.Equal(dropped, modelDropped) {
				t.Fatalf("op %d: dropped %v, model %v", i, dropped, modelDropped)
			}
		}
	})
}
