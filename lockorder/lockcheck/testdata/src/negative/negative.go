// Package negative holds code the analyzer must not report.
package negative

import (
	"context"
	"sync"

	"github.com/garrison-go/garrison/lockorder"
)

type Server struct {
	mu     sync.Mutex
	rw     sync.RWMutex
	events chan int
	cond   *sync.Cond
	ready  bool
	wg     sync.WaitGroup
}

// UnlockBeforeSend releases the lock before it blocks.
func (s *Server) UnlockBeforeSend(v int) {
	s.mu.Lock()
	n := v + 1
	s.mu.Unlock()
	s.events <- n
}

// DeferredUnlockInClosure blocks only after the function has returned.
func (s *Server) DeferredUnlock() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// SelectDefault never blocks.
func (s *Server) SelectDefault(v int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.events <- v:
		return true
	default:
		return false
	}
}

// BranchRelease unlocks on one path before blocking: the lock is not held
// on every path to the send.
func (s *Server) BranchRelease(v int, fast bool) {
	s.mu.Lock()
	if fast {
		s.mu.Unlock()
	}
	if !fast {
		s.mu.Unlock()
	}
	s.events <- v
}

// ConditionalLock takes the lock on one path only.
func (s *Server) ConditionalLock(v int, locked bool) {
	if locked {
		s.mu.Lock()
	}
	s.events <- v
	if locked {
		s.mu.Unlock()
	}
}

// EarlyReturn unlocks on every path, including the early one.
func (s *Server) EarlyReturn(v int) error {
	s.mu.Lock()
	if v < 0 {
		s.mu.Unlock()
		return context.Canceled
	}
	s.mu.Unlock()
	s.events <- v
	return nil
}

// DifferentInstances locks a, unlocks a, then blocks holding nothing, and
// locks two instances of one type in turn.
func DifferentInstances(a, b *Server, v int) {
	a.mu.Lock()
	a.mu.Unlock()
	a.events <- v
	b.mu.Lock()
	a.mu.Lock()
	a.mu.Unlock()
	b.mu.Unlock()
}

// Goroutine blocks in a new goroutine, which does not hold the lock.
func (s *Server) Goroutine(v int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	go func() { s.events <- v }()
}

// CondWait waits on a Cond made with the lock it holds.
func (s *Server) CondWait() {
	s.mu.Lock()
	for !s.ready {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

func New() *Server {
	s := &Server{events: make(chan int)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// LocalCond waits on a local Cond's own lock, taken through c.L.
func LocalCond(ready func() bool) {
	c := sync.NewCond(new(sync.Mutex))
	c.L.Lock()
	for !ready() {
		c.Wait()
	}
	c.L.Unlock()
}

// Park holds the lock and parks for good on purpose: it waits for no one.
func (s *Server) Park() {
	s.mu.Lock()
	select {}
}

// Ignored is silenced with a reason.
func (s *Server) Ignored(v int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events <- v //lockcheck:ignore buffered, drained by the owner without the lock
}

// unlockAndWait is called with s.mu held and releases it before blocking.
func (s *Server) unlockAndWait() {
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
}

// Helper calls a function that drops the lock before it waits, and a
// closure that does the same.
func (s *Server) Helper() {
	s.mu.Lock()
	s.unlockAndWait()
	s.mu.Unlock()
	s.mu.Lock()
	func() {
		s.mu.Unlock()
		<-s.events
		s.mu.Lock()
	}()
	s.mu.Unlock()
}

// ReadThenWrite takes a read lock, releases it, then the write lock.
func (s *Server) ReadThenWrite() {
	s.rw.RLock()
	ok := s.ready
	s.rw.RUnlock()
	if !ok {
		s.rw.Lock()
		s.ready = true
		s.rw.Unlock()
	}
}

// Loop locks and unlocks in every iteration and blocks between them.
func (s *Server) Loop(vs []int) {
	for _, v := range vs {
		s.mu.Lock()
		s.ready = v > 0
		s.mu.Unlock()
		s.events <- v
	}
}

// LockReturn returns holding the lock on purpose on one path and never
// acquires it on the other: not a missing unlock.
func (s *Server) LockIf(ok bool) bool {
	if ok {
		s.mu.Lock()
		return true
	}
	return false
}

// Indexed locks and unlocks an element through different index values.
func Indexed(locks []sync.Mutex, i, j int, c chan int) {
	locks[i].Lock()
	locks[j].Unlock()
	c <- 1
}

// Captured locks through a receiver variable captured (and reassigned) by
// a closure: one mutex, not two.
func Captured(s *Server) {
	f := func() { s = New() }
	s.mu.Lock()
	s.mu.Unlock()
	f()
	s.events <- 1
}

func (s *Server) lock()   { s.mu.Lock() }
func (s *Server) unlock() { s.mu.Unlock() }

// LockHelpers releases through the helper before it blocks.
func (s *Server) LockHelpers() {
	s.lock()
	s.ready = true
	s.unlock()
	s.events <- 1
}

// LockIfOpen is a lock-and-check helper: it releases on the early error
// return and returns holding the lock otherwise.
func (s *Server) LockIfOpen() error {
	s.mu.Lock()
	if s.ready {
		s.mu.Unlock()
		return context.Canceled
	}
	return nil
}

// Grab hands the caller the Unlock.
func (s *Server) Grab() (func(), error) {
	s.rw.RLock()
	if s.ready {
		s.rw.RUnlock()
		return nil, context.Canceled
	}
	return s.rw.RUnlock, nil
}

type conn struct {
	mu      sync.Mutex
	closed  chan struct{}
	waiters []chan struct{}
	byID    map[int]chan int
}

func newConn() *conn {
	return &conn{closed: make(chan struct{}, 1), byID: map[int]chan int{}}
}

// Buffered sends on one-slot channels under the lock: a handoff, not a
// rendezvous.
func (c *conn) Buffered(id int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed <- struct{}{}
	w := make(chan struct{}, 1)
	c.waiters = append(c.waiters, w)
	c.waiters[0] <- struct{}{}
	for _, ch := range c.byID {
		ch <- id
	}
	local := make(chan int, 1)
	local <- id
}

func (c *conn) register(id int) chan int {
	ch := make(chan int, 1)
	c.mu.Lock()
	c.byID[id] = ch
	c.mu.Unlock()
	return ch
}

type halfConn struct{ sync.Mutex }

type tlsConn struct{ in, out halfConn }

// Two fields of one type are two roles: in then out here, out then in
// there would be an inversion, but in then out twice is not, and out alone
// is not one.
func (t *tlsConn) read() {
	t.in.Lock()
	t.out.Lock()
	t.out.Unlock()
	t.in.Unlock()
}

func (t *tlsConn) write() {
	t.out.Lock()
	t.out.Unlock()
	t.in.Lock()
	t.in.Unlock()
}

// SendResult hands the result of a conditional acquisition to another
// goroutine without testing it: whether the lock is held here is unknown.
func SendResult(ctx context.Context, m *lockorder.TimedMutex, done chan error) {
	done <- m.LockContext(ctx)
	go func() { done <- m.LockContext(ctx) }()
}

type box[T any] struct {
	mu sync.Mutex
	v  T
	c  chan T
}

// Set locks a field of a generic type, and releases it before it blocks.
func (b *box[T]) Set(v T) {
	b.mu.Lock()
	b.v = v
	b.mu.Unlock()
	b.c <- v
}

// TransferThenSend releases both locks before it blocks.
func TransferThenSend(a, b *lockorder.Mutex, c chan int) {
	lockorder.LockAll(a, b)
	lockorder.UnlockAll(a, b)
	c <- 1
}

// Forward releases locks it cannot name: nothing is held after it.
func Forward(a *lockorder.Mutex, ms []sync.Locker, c chan int) {
	a.Lock()
	lockorder.UnlockAll(ms...)
	c <- 1
}
