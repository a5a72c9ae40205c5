package naive

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// mutex is a sync.Mutex for every request the twin serves: until Close,
// Lock is sync.Mutex.Lock (plus a read of a flag) and Unlock is
// sync.Mutex.Unlock. The flag exists only so Close can take the twin down
// after a deadlock, which a plain sync.Mutex makes impossible: no goroutine
// parked in Lock ever returns, and unlocking on the holder's behalf would
// later crash the process with "unlock of unlocked mutex" when the holder
// unlocks too.
type mutex struct {
	mu sync.Mutex
	r  *restart
}

func (m *mutex) Lock() {
	m.mu.Lock()
	if m.r.isDead() {
		// unjam handed us this mutex while tearing the twin down. The
		// state behind it may still be in use by the holder unjam took it
		// from, so unwind this handler without touching anything; unjam
		// unlocks the mutex again. net/http swallows ErrAbortHandler.
		panic(http.ErrAbortHandler)
	}
}

func (m *mutex) Unlock() {
	m.r.gate.RLock()
	defer m.r.gate.RUnlock()
	if !m.r.dead {
		m.mu.Unlock()
	}
}

// restart is the stand-in for the kill -9 a deadlocked process needs.
type restart struct {
	gate sync.RWMutex
	dead bool
}

func (r *restart) isDead() bool {
	r.gate.RLock()
	defer r.gate.RUnlock()
	return r.dead
}

// unjam runs after the server stopped accepting. From then on handlers
// never unlock: unjam alone does, handing each locked mutex on until no
// handler is left, and every handler that gets a mutex from it unwinds at
// once (see Lock).
//
// Why this never unlocks an unlocked mutex: taking gate for writing waits
// for any Unlock already past its dead check, so once dead is set only this
// loop unlocks. A failed TryLock means the mutex is held by someone who will
// never unlock it; a successful one means we hold it. Either way it is
// locked when we call Unlock, and each lock is undone exactly once.
func (r *restart) unjam(ctx context.Context, inflight *atomic.Int64, ms []*mutex) {
	r.gate.Lock()
	r.dead = true
	r.gate.Unlock()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for inflight.Load() > 0 {
		for _, m := range ms {
			_ = m.mu.TryLock()
			m.mu.Unlock()
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
