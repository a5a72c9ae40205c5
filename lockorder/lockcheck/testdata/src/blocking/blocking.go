// Package blocking holds blocking operations made under a lock: each line
// with a want comment must be reported. (net stands for the network calls:
// net/http would triple the time the test spends loading packages.)
package blocking

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/garrison-go/garrison/changuard"
	"github.com/garrison-go/garrison/lockorder"
	"github.com/garrison-go/garrison/spawn"
)

type Server struct {
	mu     sync.Mutex
	rw     sync.RWMutex
	lo     lockorder.Mutex
	events chan int
	wg     sync.WaitGroup
	lwg    lockorder.WaitGroup
	conn   net.Conn
	out    *changuard.Chan[int]
	sp     *spawn.Spawner
}

func (s *Server) Send(v int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events <- v // want `channel send while s.mu is held \(locked at line 30\)`
}

func (s *Server) Recv() int {
	s.mu.Lock()
	v := <-s.events // want `channel receive while s.mu is held`
	s.mu.Unlock()
	return v
}

func (s *Server) Range() {
	s.rw.RLock()
	defer s.rw.RUnlock()
	for range s.events { // want `channel receive while s.rw is read-locked`
	}
}

func (s *Server) Select(ctx context.Context) {
	s.lo.Lock()
	defer s.lo.Unlock()
	select { // want `select without default while s.lo is held`
	case <-ctx.Done():
	case s.events <- 1:
	}
}

func (s *Server) WaitAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wg.Wait()  // want `sync.WaitGroup.Wait while s.mu is held`
	s.lwg.Wait() // want `lockorder.WaitGroup.Wait while s.mu is held`
}

func (s *Server) Sleep() {
	s.mu.Lock()
	time.Sleep(time.Millisecond) // want `time.Sleep while s.mu is held`
	s.mu.Unlock()
}

func (s *Server) Network(buf []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.conn.Read(buf); err != nil { // want `net.Conn.Read while s.mu is held`
		return err
	}
	c, err := net.Dial("tcp", "127.0.0.1:1") // want `net.Dial while s.mu is held`
	if err != nil {
		return err
	}
	return c.Close()
}

func (s *Server) Garrison(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.out.Send(ctx, 1); err != nil { // want `changuard.Chan.Send while s.mu is held`
		return err
	}
	return s.sp.Wait(ctx) // want `spawn.Spawner.Wait while s.mu is held`
}

// flush blocks on behalf of its callers.
func (s *Server) flush() { s.events <- 0 }

func (s *Server) ViaHelper() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush() // want `call to Server.flush, which may block \(channel send at line 94\) while s.mu is held`
}

var (
	globalMu sync.Mutex
	results  = make(chan int)
)

func Global() {
	globalMu.Lock()
	results <- 1 // want `channel send while globalMu is held`
	globalMu.Unlock()
}

func Param(mu *sync.Mutex, c chan int) {
	mu.Lock()
	c <- 1 // want `channel send while mu is held`
	mu.Unlock()
}

func Guarded(g *changuard.Guarded[int], c chan int) {
	g.With(func(v *int) {
		c <- *v // want `channel send while the lock of Guarded g is held`
	})
}

// Loop holds the lock across every iteration's send.
func (s *Server) Loop(vs []int) {
	s.mu.Lock()
	for _, v := range vs {
		s.events <- v // want `channel send while s.mu is held`
	}
	s.mu.Unlock()
}

func (s *Server) lock()   { s.mu.Lock() }
func (s *Server) unlock() { s.mu.Unlock() }

// ViaLockHelper takes the lock through a helper that returns holding it.
func (s *Server) ViaLockHelper() {
	s.lock()
	defer s.unlock()
	s.events <- 1 // want `channel send while s.mu is held \(locked at line 139\)`
}

func ReadCallback(g *changuard.Guarded[int], c chan int) {
	g.Read(func(v int) {
		c <- v // want `channel send while the lock of Guarded g is held`
	})
}

type mixed struct {
	mu sync.Mutex
	c  chan int
}

func newMixed(buffered bool) *mixed {
	if buffered {
		return &mixed{c: make(chan int, 1)}
	}
	return &mixed{c: make(chan int)}
}

// Send on a field that is unbuffered on one path of its construction.
func (m *mixed) Send() {
	m.mu.Lock()
	m.c <- 1 // want `channel send while m.mu is held`
	m.mu.Unlock()
}

type timed struct {
	mu lockorder.TimedMutex
	sm sync.Mutex
	c  chan int
}

// Conditional acquisitions hold the lock on their success edge only.
func (t *timed) Conditional(ctx context.Context) error {
	if err := t.mu.LockContext(ctx); err != nil {
		t.c <- 0 // not held: the acquisition failed
		return err
	}
	defer t.mu.Unlock()
	t.c <- 1 // want `channel send while t.mu is held`
	return nil
}

func (t *timed) Try() bool {
	if !t.sm.TryLock() {
		t.c <- 0 // not held
		return false
	}
	t.c <- 1 // want `channel send while t.sm is held`
	t.sm.Unlock()
	return true
}

func (t *timed) TryElse() {
	if t.mu.TryLock() {
		t.c <- 1 // want `channel send while t.mu is held`
		t.mu.Unlock()
	} else {
		t.c <- 0 // not held
	}
	t.c <- 2 // not held on either path
}

type box[T any] struct {
	mu sync.Mutex
	c  chan T
}

func (b *box[T]) Put(v T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.c <- v // want `channel send while b.mu is held`
}

// LockAll holds every lock it is given.
func Transfer(a, b *Server, c chan int) {
	lockorder.LockAll(&a.lo, &b.lo)
	defer lockorder.UnlockAll(&a.lo, &b.lo)
	c <- 1 // want `channel send while a.lo is held \(locked at line 219\) and b.lo is held`
}
