package goker

import "sync"

// Kernels the analyzer does not report (no want comment): they deadlock,
// and stay here so that a change that starts catching them shows up as an
// unexpected report, to be turned into a want.

// Blocking behind an interface: the send is in a method the analyzer
// cannot resolve statically.
type notifier interface{ notify() }

type chanNotifier struct{ c chan struct{} }

func (n chanNotifier) notify() { n.c <- struct{}{} }

type hub struct {
	mu sync.Mutex
	n  notifier
}

func (h *hub) broadcast() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n.notify() // missed: dynamic call
}

// A function that never unlocks on any path: indistinguishable from a lock
// helper that returns holding the lock on purpose.
type tracker struct {
	mu   sync.Mutex
	seen int
}

func (t *tracker) record() {
	t.mu.Lock()
	t.seen++
} // missed: no return releases t.mu, so none contradicts this one

// An order taken through a func value: the callee is not known.
type journal struct{ mu sync.Mutex }

type segment struct{ mu sync.Mutex }

func (j *journal) rotate(s *segment, flush func(*segment)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	flush(s) // missed: flush locks s.mu, journal.mu -> segment.mu unseen
}

func (s *segment) sync(j *journal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.mu.Lock() // segment.mu -> journal.mu
	j.mu.Unlock()
}
