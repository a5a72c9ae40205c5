package limiter

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPreemptStress: connections from 40 sources arrive at a cap of 16
// while their owners move them between new, active and idle at random, as
// http.Server would through ConnState, from many goroutines. A connection
// that its owner holds active must never be preempted, and every
// connection ends in exactly one accounted state.
func TestPreemptStress(t *testing.T) {
	inner := newChanListener()
	l, err := NewListener(inner, WithMaxConns(16), WithOverflow(Preempt), WithoutFirstByteTimeout())
	require.NoError(t, err)
	const total = 3000
	var owners sync.WaitGroup
	var violations atomic.Int64
	var mu sync.Mutex
	var clients []net.Conn
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			owners.Add(1)
			go func() {
				defer owners.Done()
				defer c.Close()
				w := c.(*conn)
				l.ConnState(c, http.StateNew)
				rng := rand.New(rand.NewPCG(uint64(w.slot+2), 7))
				for range 1 + rng.IntN(8) {
					if w.released.Load() {
						return // preempted while new or idle: allowed
					}
					l.ConnState(c, http.StateActive)
					if connState(w.state.Load()) != stActive {
						return // preempted before it became active: allowed
					}
					// While active, nothing may take the connection away.
					for range 1 + rng.IntN(50) {
						if w.released.Load() {
							violations.Add(1)
						}
						runtime.Gosched()
					}
					l.ConnState(c, http.StateIdle)
					for range rng.IntN(50) {
						runtime.Gosched()
					}
				}
			}()
		}
	}()
	var dialers sync.WaitGroup
	for g := range 4 {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for i := range total / 4 {
				c := pipeFrom(inner, fmt.Sprintf("10.2.%d.%d", g, i%10))
				mu.Lock()
				clients = append(clients, c)
				mu.Unlock()
			}
		}()
	}
	dialers.Wait()
	// Every connection handed over has been accepted or refused once
	// Incoming reaches the total.
	require.Eventually(t, func() bool { return l.Stats().Incoming == total }, 10*time.Second, time.Millisecond)
	require.NoError(t, l.Close())
	<-acceptDone
	owners.Wait()
	for _, c := range clients {
		_ = c.Close()
	}
	st := l.Stats()
	t.Logf("%+v %v", st, st.Rejected.Map())
	require.Zero(t, violations.Load(), "an active connection was preempted")
	require.Zero(t, st.Active)
	require.Equal(t, st.Incoming, st.Closed+st.Rejected.Total())
	require.Equal(t, st.Accepted, st.Closed+st.Rejected[Preempted])
	require.Positive(t, st.Rejected[Preempted])
	require.Zero(t, l.lg.n, "the ledger is empty")
	require.Zero(t, l.lg.tier[tierFresh].top)
	require.Zero(t, l.lg.tier[tierIdle].top)
}
