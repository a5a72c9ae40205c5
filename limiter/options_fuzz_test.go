package limiter

import (
	"errors"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// FuzzOptions: any combination of option values either fails construction
// with an invalid-option error or yields a Listener that accepts, tracks,
// preempts and accounts for connections without panicking.
func FuzzOptions(f *testing.F) {
	f.Add(512, 64, uint8(2), int64(time.Second), 256, int64(time.Second), 1024, int64(10*time.Second), 50.0, 100, 0.2, int64(0), 64)
	f.Add(1, 0, uint8(0), int64(0), 0, int64(0), 0, int64(0), 0.0, 0, 1.0, int64(0), 0)
	f.Add(-1, -1, uint8(9), int64(-1), -1, int64(-1), -1, int64(-1), math.NaN(), -1, 0.0, int64(-1), 129)
	f.Add(maxCapacity+1, 1, uint8(1), int64(math.MaxInt64), math.MaxInt, int64(math.MaxInt64), 1, int64(1), math.Inf(1), 1, math.Inf(1), int64(math.MaxInt64), 128)
	f.Fuzz(func(t *testing.T, maxConns, perIP int, policy uint8, firstByte int64, readRate int, readWin int64,
		writeRate int, writeWin int64, resetRate float64, resetBurst int, floor float64, deferAcc int64, v6 int) {
		opts := []ListenerOption{
			WithMaxConns(maxConns), WithOverflow(OverflowPolicy(policy)),
			WithResetRate(rate.Limit(resetRate), resetBurst), WithStreamRate(rate.Limit(resetRate), resetBurst),
			WithAdaptiveTimeouts(floor), WithIPv6Prefix(v6),
		}
		if perIP != 0 {
			opts = append(opts, WithMaxConnsPerIP(perIP))
		}
		if firstByte != 0 {
			opts = append(opts, WithFirstByteTimeout(time.Duration(firstByte)))
		} else {
			opts = append(opts, WithoutFirstByteTimeout())
		}
		if readRate != 0 || readWin != 0 {
			opts = append(opts, WithMinReadRate(readRate, time.Duration(readWin)))
		}
		if writeRate != 0 || writeWin != 0 {
			opts = append(opts, WithMinWriteRate(writeRate, time.Duration(writeWin)))
		}
		if deferAcc != 0 {
			// The in-memory listener has no socket: construction must fail
			// cleanly whatever the value.
			opts = append(opts, WithDeferAccept(time.Duration(deferAcc)))
		}
		switch {
		case resetBurst < 0:
			opts = append(opts, WithoutTarpit())
		case resetBurst > 0:
			opts = append(opts, WithTarpit(resetBurst, time.Duration(readWin)))
		}
		if maxConns > 1<<16 && maxConns <= maxCapacity {
			return // valid caps this large allocate a table per run; the bounds are checked above
		}
		inner := newChanListener()
		l, err := NewListener(inner, opts...)
		if err != nil {
			require.True(t, errors.Is(err, errInvalid), "error %v does not say the option is invalid", err)
			return
		}
		defer l.Close()
		srv, err := l.Harden(nil)
		require.NoError(t, err)
		require.NotNil(t, srv.Handler)
		for i := range 3 {
			client := pipeFrom(inner, "10.3.0."+string(rune('1'+i)))
			c, err := l.Accept()
			if err != nil {
				_ = client.Close()
				continue
			}
			l.ConnState(c, http.StateNew)
			l.ConnState(c, http.StateActive)
			l.ConnState(c, http.StateIdle)
			_ = c.Close()
			_ = client.Close()
		}
		st := l.Stats()
		require.Equal(t, st.Incoming, uint64(st.Active)+st.Closed+st.Rejected.Total())
		require.Zero(t, st.Active)
	})
}
