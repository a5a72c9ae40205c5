package spawn_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

// FuzzSequence runs a random sequence of submissions, cancellations and
// releases against a small spawner, then checks that everything was
// accounted for and resolved.
func FuzzSequence(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{4, 4, 4, 4, 5, 6, 4, 5})
	f.Add([]byte{3, 11, 19, 27, 3, 6, 3})
	f.Add([]byte{8, 8, 0, 0, 6, 2, 2})
	f.Fuzz(func(t *testing.T, prog []byte) {
		opts := []spawn.Option{spawn.WithMaxConcurrent(2), spawn.WithQueue(2), spawn.WithMaxWaiters(0), spawn.WithPerKey(2, 3)}
		if len(prog)%2 == 1 {
			// The overload controls: an adaptive limit, and a queue
			// target so short that every queued task may be shed.
			opts = append(opts, spawn.WithAdaptiveLimit(1, 2), spawn.WithQueueTarget(time.Microsecond, time.Microsecond))
		}
		s, err := spawn.New(opts...)
		require.NoError(t, err)
		gate := make(chan struct{})
		blocked := func(gate chan struct{}) func(context.Context) error {
			return func(context.Context) error { <-gate; return nil }
		}
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		var handles []*spawn.Handle[int]
		accepted := 0
		for _, b := range prog {
			var err error
			switch b % 9 {
			case 0:
				err = s.TryGo(nop)
			case 1:
				err = s.TryGo(func(context.Context) error { return errors.New("x") })
			case 2:
				err = s.TryGo(func(context.Context) error { panic("fuzz") })
			case 3:
				err = s.GoKey(context.Background(), string(rune('a'+b>>3%4)), blocked(gate))
			case 4:
				var h *spawn.Handle[int]
				g := gate
				ctx := context.Background()
				if b>>4%2 == 1 {
					ctx = spawn.WithCriticality(ctx, spawn.Criticality(b>>5%3)-1)
				}
				h, err = spawn.Submit(ctx, s, func(context.Context) (int, error) { <-g; return 1, nil })
				if err == nil {
					handles = append(handles, h)
				}
			case 5:
				if len(handles) > 0 {
					handles[int(b>>4)%len(handles)].Cancel()
				}
				continue
			case 6:
				close(gate)
				gate = make(chan struct{})
				continue
			case 7:
				err = s.Go(canceled, nop)
			case 8:
				err = s.TryGo(func(context.Context) error { runtime.Goexit(); return nil })
			}
			if err == nil {
				accepted++
			}
		}
		close(gate)
		require.NoError(t, s.Wait(context.Background()))
		for _, h := range handles {
			<-h.Done()
		}
		require.NoError(t, s.Shutdown(context.Background()))
		st := s.Stats()
		require.Equal(t, int64(len(prog))-int64(countOps(prog)), st.Submitted)
		require.Equal(t, int64(accepted), st.Submitted-st.Rejected)
		require.Equal(t, 0, st.Keys)
		require.Equal(t, 0, st.Workers)
		assertAccounted(t, s)
	})
}

// countOps counts the bytes of prog that do not submit anything.
func countOps(prog []byte) int {
	n := 0
	for _, b := range prog {
		if b%9 == 5 || b%9 == 6 {
			n++
		}
	}
	return n
}
