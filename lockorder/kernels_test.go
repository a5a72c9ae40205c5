//go:build lockorder || race

package lockorder

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The kernel suite: small programs modelled on the mechanisms of the
// GoKer blocking-bug kernels (GoBench, CGO 2021) that lockorder must
// report before they hang: double locking, AB-BA, RWR, and locks held
// across channel operations, WaitGroup.Wait, Cond.Wait and sync.Once. Each
// kernel runs a fixed schedule (raw channels, invisible to the checker,
// order the goroutines): either straight into the interleaving that hangs
// with the sync types, or first a benign run that does not hang and then
// that interleaving. A report panics the reporting goroutine out of the
// operation that would block (abortReport), which ends the deadlock; a
// kernel still running after kernelTimeout is a miss that hung, and fails
// the test instead of hanging it. Negative kernels must produce no report.

const kernelTimeout = 5 * time.Second

type kernel struct {
	name, class, mechanism string
	want                   error // nil: a negative control
	run                    func(k *kernelRun)
}

// kernelRun is one kernel's execution.
type kernelRun struct {
	mu       sync.Mutex
	phase    string
	reports  []*OrderError
	phases   []string
	wg       sync.WaitGroup
	cleanups []func()
}

// abortReport is what the handler panics with to end a goroutine that was
// about to block.
type abortReport struct{}

func (k *kernelRun) handle(e *OrderError) {
	k.mu.Lock()
	k.reports = append(k.reports, e)
	k.phases = append(k.phases, k.phase)
	k.mu.Unlock()
	if e.atBlock {
		panic(abortReport{})
	}
}

// setPhase names the part of the schedule now running. A hanging run
// after a benign one says so: its report relies on what the benign run
// taught the checker.
func (k *kernelRun) setPhase(p string) {
	k.mu.Lock()
	if p == "hanging run" && strings.HasPrefix(k.phase, "benign") {
		p = "hanging run, after a benign run"
	}
	k.phase = p
	k.mu.Unlock()
}

// goroutine runs f on a new goroutine; an abortReport ends it quietly,
// after its deferred calls.
func (k *kernelRun) goroutine(f func()) {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(abortReport); !ok {
					panic(r)
				}
			}
		}()
		f()
	}()
}

// join waits for the goroutines started so far; false if they hung.
func (k *kernelRun) join() bool {
	done := make(chan struct{})
	go func() { k.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(kernelTimeout):
		return false
	}
}

// until polls cond (a schedule step: another goroutine reached a point
// the checker records), bounded by kernelTimeout.
func until(cond func() bool) {
	deadline := time.Now().Add(kernelTimeout)
	for !cond() && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(50 * time.Microsecond)
	}
}

// waiting reports whether goroutine gid has a record in state waiting
// (it is blocked in, or about to block in, an acquisition).
func waiting(gid int64) bool {
	sh := shardOf(gid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if gl := sh.lookup(gid); gl != nil {
		for _, e := range gl.held {
			if e.state.Load() == stateWaiting {
				return true
			}
		}
	}
	return false
}

// outEdges is the number of edges leaving m's class.
func outEdges(c *Class) int {
	graph.mu.Lock()
	defer graph.mu.Unlock()
	return c.node.out.Load().len()
}

func gidOf(k *kernelRun, f func()) int64 {
	ch := make(chan int64, 1)
	k.goroutine(func() { ch <- curGoid(); f() })
	return <-ch
}

func newMutex(name string) *Mutex { return classed(name, 0) }

func newRW(name string) *RWMutex {
	rw := new(RWMutex)
	rw.SetClass(NewClass(name, 0))
	return rw
}

var kernels = []kernel{
	// Double locking.
	{"relock-in-helper", "double locking", "a method calls a helper that locks the same mutex", ErrRecursive, func(k *kernelRun) {
		mu := newMutex("k1.mu")
		k.setPhase("hanging run")
		k.goroutine(func() {
			mu.Lock()
			defer mu.Unlock()
			func() { mu.Lock(); work.Add(1); mu.Unlock() }()
		})
	}},
	{"missing-unlock-loop", "double locking", "an early continue skips Unlock; the next iteration relocks", ErrRecursive, func(k *kernelRun) {
		mu := newMutex("k2.mu")
		k.setPhase("hanging run")
		k.goroutine(func() {
			held := false
			defer func() {
				if held {
					mu.Unlock()
				}
			}()
			for i := range 2 {
				mu.Lock()
				held = true
				if i == 0 {
					continue // the bug: no Unlock on this path
				}
				mu.Unlock()
				held = false
			}
		})
	}},
	{"missing-unlock-other-goroutine", "double locking", "an error path returns holding the lock; another goroutine relocks", ErrExitedHolder, func(k *kernelRun) {
		mu := newMutex("k3.mu")
		k.cleanups = append(k.cleanups, mu.Unlock)
		k.setPhase("hanging run")
		failing := func() error {
			mu.Lock()
			if work.Load() >= 0 {
				return errors.New("early return") // the bug: no Unlock
			}
			mu.Unlock()
			return nil
		}
		run(func() { _ = failing() })
		k.goroutine(func() { mu.Lock(); work.Add(1); mu.Unlock() })
	}},
	{"rlock-then-lock", "double locking", "a read-locked method calls a write-locking one", ErrRecursive, func(k *kernelRun) {
		rw := newRW("k4.rw")
		k.setPhase("hanging run")
		k.goroutine(func() {
			rw.RLock()
			defer rw.RUnlock()
			rw.Lock()
			work.Add(1)
			rw.Unlock()
		})
	}},
	// AB-BA.
	{"ab-ba", "AB-BA", "two goroutines lock A, B in opposite orders, both hold the first", ErrInversion, func(k *kernelRun) {
		a, b := newMutex("k5.A"), newMutex("k5.B")
		k.setPhase("hanging run")
		aHeld, bHeld := make(chan struct{}), make(chan struct{})
		g1 := gidOf(k, func() {
			a.Lock()
			defer a.Unlock()
			close(aHeld)
			<-bHeld
			b.Lock()
			work.Add(1)
			b.Unlock()
		})
		k.goroutine(func() {
			<-aHeld
			b.Lock()
			defer b.Unlock()
			close(bHeld)
			until(func() bool { return waiting(g1) })
			a.Lock()
			work.Add(1)
			a.Unlock()
		})
	}},
	{"abc-cycle", "AB-BA", "three goroutines, three locks, a cycle of length three", ErrInversion, func(k *kernelRun) {
		ms := []*Mutex{newMutex("k6.A"), newMutex("k6.B"), newMutex("k6.C")}
		k.setPhase("hanging run")
		held := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
		for i := range 3 {
			k.goroutine(func() {
				ms[i].Lock()
				defer ms[i].Unlock()
				close(held[i])
				<-held[(i+1)%3]
				if i == 2 {
					until(func() bool { return outEdges(ms[0].lk.class.Load()) > 0 && outEdges(ms[1].lk.class.Load()) > 0 })
				}
				ms[(i+1)%3].Lock()
				work.Add(1)
				ms[(i+1)%3].Unlock()
			})
		}
	}},
	{"transfer-instances", "AB-BA", "transfer(a, b) and transfer(b, a) on two instances of one type", ErrInversion, func(k *kernelRun) {
		type account struct {
			mu  Mutex
			bal int
		}
		x, y := new(account), new(account)
		transfer := func(from, to *account) {
			from.mu.Lock()
			defer from.mu.Unlock()
			to.mu.Lock()
			defer to.mu.Unlock()
			from.bal--
			to.bal++
		}
		k.setPhase("benign run")
		k.goroutine(func() { transfer(x, y) })
		k.join()
		k.setPhase("second run")
		k.goroutine(func() { transfer(y, x) })
	}},
	{"rlock-ab-ba", "AB-BA", "read lock A then B here, B then A there", ErrInversion, func(k *kernelRun) {
		a, b := newRW("k8.A"), newMutex("k8.B")
		k.setPhase("benign run")
		k.goroutine(func() { a.RLock(); b.Lock(); work.Add(1); b.Unlock(); a.RUnlock() })
		k.join()
		k.setPhase("second run")
		k.goroutine(func() { b.Lock(); defer b.Unlock(); a.Lock(); work.Add(1); a.Unlock() })
	}},
	// RWR.
	{"recursive-rlock-writer", "RWR", "a reader re-enters RLock while a writer waits", ErrRecursive, func(k *kernelRun) {
		rw := newRW("k9.rw")
		k.setPhase("hanging run")
		rLocked := make(chan struct{})
		writer := make(chan int64, 1)
		k.goroutine(func() {
			rw.RLock()
			defer rw.RUnlock()
			close(rLocked)
			w := <-writer
			until(func() bool { return waiting(w) })
			rw.RLock() // blocks behind the writer
			work.Add(1)
			rw.RUnlock()
		})
		<-rLocked
		k.goroutine(func() {
			writer <- curGoid()
			rw.Lock()
			work.Add(1)
			rw.Unlock()
		})
	}},
	{"rwr-two-locks", "RWR", "reader of A waits for B; B's holder wants A for writing", ErrInversion, func(k *kernelRun) {
		a, b := newRW("k10.A"), newRW("k10.B")
		k.setPhase("hanging run")
		aHeld, bHeld := make(chan struct{}), make(chan struct{})
		g1 := gidOf(k, func() {
			a.RLock()
			defer a.RUnlock()
			close(aHeld)
			<-bHeld
			b.RLock()
			work.Add(1)
			b.RUnlock()
		})
		k.goroutine(func() {
			<-aHeld
			b.Lock()
			defer b.Unlock()
			close(bHeld)
			until(func() bool { return waiting(g1) })
			a.Lock()
			work.Add(1)
			a.Unlock()
		})
	}},
	{"rlock-across-cond-wait", "RWR", "a read lock held across Cond.Wait; the signaller write-locks it first", ErrBlocking, func(k *kernelRun) {
		rw := newRW("k11.rw")
		mu := newMutex("k11.mu")
		cond := NewCond(mu)
		ready := false
		signal := func() {
			rw.Lock()
			work.Add(1)
			rw.Unlock()
			mu.Lock()
			ready = true
			cond.Signal()
			mu.Unlock()
		}
		k.setPhase("benign run")
		k.goroutine(signal)
		k.join()
		ready = false
		k.setPhase("hanging run")
		locked := make(chan struct{})
		k.goroutine(func() {
			rw.RLock()
			defer rw.RUnlock()
			mu.Lock()
			defer mu.Unlock()
			close(locked)
			for !ready {
				cond.Wait()
			}
		})
		<-locked
		k.goroutine(signal) // blocks on rw until the waiter lets go
	}},
	// Mixed: channels, WaitGroup, Cond, Once and locks.
	{"wait-under-lock-go", "mixed", "Wait under a lock that a WaitGroup.Go worker needs", ErrBlocking, func(k *kernelRun) {
		mu := newMutex("k12.mu")
		var wg WaitGroup
		k.setPhase("hanging run")
		k.goroutine(func() {
			mu.Lock()
			defer mu.Unlock()
			wg.Go(func() {
				defer func() { _ = recover() }()
				mu.Lock()
				work.Add(1)
				mu.Unlock()
			})
			wg.Wait()
		})
	}},
	{"wait-under-lock-done", "mixed", "Wait under a lock that an Add/Done worker needs", ErrBlocking, func(k *kernelRun) {
		mu := newMutex("k13.mu")
		var wg WaitGroup
		worker := func() {
			defer wg.Done()
			mu.Lock()
			work.Add(1)
			mu.Unlock()
		}
		k.setPhase("benign run")
		wg.Add(1)
		k.goroutine(worker)
		k.join()
		k.setPhase("hanging run")
		k.goroutine(func() {
			mu.Lock()
			defer mu.Unlock()
			wg.Add(1)
			go worker()
			wg.Wait()
		})
	}},
	{"send-under-lock", "mixed", "a send under a lock the receiver takes before receiving", ErrBlocking, func(k *kernelRun) {
		mu := newMutex("k14.mu")
		ch := make(chan int)
		recv := func() {
			mu.Lock()
			work.Add(1)
			mu.Unlock()
			Unblocking(ch)
			<-ch
		}
		k.setPhase("benign run")
		k.goroutine(recv)
		k.goroutine(func() { Blocking(ch); ch <- 1 })
		k.join()
		k.setPhase("hanging run")
		k.goroutine(func() {
			mu.Lock()
			defer mu.Unlock()
			Blocking(ch)
			ch <- 2
		})
	}},
	{"recv-under-lock", "mixed", "a receive under a lock the sender needs (sender declared with WillUnblock)", ErrBlocking, func(k *kernelRun) {
		mu := newMutex("k15.mu")
		results := make(chan int, 1) // the sender never blocks once mu is free
		k.setPhase("hanging run")
		k.goroutine(func() {
			mu.Lock()
			defer mu.Unlock()
			go func() {
				defer func() {
					_ = recover()
					Unblocking(results)
					results <- 1
				}()
				WillUnblock(results)
				mu.Lock() // reported here if the receiver's wait is known
				work.Add(1)
				mu.Unlock()
			}()
			Blocking(results)
			select {
			case <-results:
			case <-time.After(kernelTimeout):
			}
		})
	}},
	{"once-cycle", "mixed", "Do under a lock that the running f takes", ErrInversion, func(k *kernelRun) {
		mu := newMutex("k16.mu")
		var once Once
		inF := make(chan struct{})
		caller := make(chan int64, 1)
		k.setPhase("hanging run")
		k.goroutine(func() {
			once.Do(func() {
				close(inF)
				c := <-caller
				until(func() bool { return waiting(c) })
				mu.Lock()
				work.Add(1)
				mu.Unlock()
			})
		})
		<-inF
		k.goroutine(func() {
			mu.Lock()
			defer mu.Unlock()
			caller <- curGoid()
			once.Do(func() {})
		})
	}},
	{"chain-through-channel", "mixed", "A held across a receive whose sender needs B, while B's holder wants A", ErrBlocking, func(k *kernelRun) {
		a, b := newMutex("k17.A"), newMutex("k17.B")
		ch := make(chan int, 1)
		k.setPhase("benign run")
		k.goroutine(func() { b.Lock(); a.Lock(); work.Add(1); a.Unlock(); b.Unlock() })
		k.goroutine(func() { b.Lock(); work.Add(1); b.Unlock(); Unblocking(ch); ch <- 1 })
		k.join()
		<-ch
		k.setPhase("hanging run")
		k.goroutine(func() {
			a.Lock()
			defer a.Unlock()
			Blocking(ch)
			select {
			case <-ch:
			case <-time.After(kernelTimeout):
			}
		})
	}},
	{"lock-across-cond-wait", "mixed", "a second lock held across Cond.Wait; the signaller needs it", ErrBlocking, func(k *kernelRun) {
		outer, mu := newMutex("k18.outer"), newMutex("k18.mu")
		cond := NewCond(mu)
		ready := false
		signal := func() {
			outer.Lock()
			work.Add(1)
			outer.Unlock()
			mu.Lock()
			ready = true
			cond.Broadcast()
			mu.Unlock()
		}
		k.setPhase("benign run")
		k.goroutine(signal)
		k.join()
		ready = false
		k.setPhase("hanging run")
		locked := make(chan struct{})
		k.goroutine(func() {
			outer.Lock()
			defer outer.Unlock()
			mu.Lock()
			defer mu.Unlock()
			close(locked)
			for !ready {
				cond.Wait()
			}
		})
		<-locked
		k.goroutine(signal) // blocks on outer until the waiter lets go
	}},
	// Negative controls: correct code, no report allowed.
	{"ok-unlock-before-wait", "negative", "the lock is released before Wait", nil, func(k *kernelRun) {
		mu := newMutex("n1.mu")
		var wg WaitGroup
		k.goroutine(func() {
			mu.Lock()
			work.Add(1)
			mu.Unlock()
			for range 3 {
				wg.Go(func() { mu.Lock(); work.Add(1); mu.Unlock() })
			}
			wg.Wait()
		})
	}},
	{"ok-workers-other-lock", "negative", "Wait under a lock the workers never take", nil, func(k *kernelRun) {
		mu, other := newMutex("n2.mu"), newMutex("n2.other")
		var wg WaitGroup
		k.goroutine(func() {
			mu.Lock()
			defer mu.Unlock()
			for range 3 {
				wg.Go(func() { other.Lock(); work.Add(1); other.Unlock() })
			}
			wg.Wait()
		})
	}},
	{"ok-cond-pattern", "negative", "the usual Cond loop, L held on both sides", nil, func(k *kernelRun) {
		var mu Mutex
		cond := NewCond(&mu)
		n := 0
		for range 3 {
			k.goroutine(func() { mu.Lock(); n++; cond.Broadcast(); mu.Unlock() })
		}
		k.goroutine(func() {
			mu.Lock()
			for n < 3 {
				cond.Wait()
			}
			mu.Unlock()
		})
	}},
	{"ok-lockall-transfers", "negative", "opposite transfers through LockAll", nil, func(k *kernelRun) {
		acct := NewClass("n4.account", 0)
		x, y := new(Mutex), new(Mutex)
		x.SetClass(acct)
		y.SetClass(acct)
		for range 4 {
			k.goroutine(func() { LockAll(x, y); work.Add(1); UnlockAll(x, y) })
			k.goroutine(func() { LockAll(y, x); work.Add(1); UnlockAll(y, x) })
		}
	}},
	{"ok-send-under-lock", "negative", "a send under a lock the receiver never takes", nil, func(k *kernelRun) {
		mu := newMutex("n5.mu")
		ch := make(chan int)
		k.goroutine(func() { Unblocking(ch); <-ch })
		k.goroutine(func() { mu.Lock(); defer mu.Unlock(); Blocking(ch); ch <- 1 })
	}},
	{"ok-trylock-opposite", "negative", "TryLock in the opposite order cannot block", nil, func(k *kernelRun) {
		a, b := newMutex("n6.A"), newMutex("n6.B")
		k.goroutine(func() { lockAB(a, b) })
		k.goroutine(func() {
			b.Lock()
			if a.TryLock() {
				a.Unlock()
			}
			b.Unlock()
		})
	}},
}

type kernelOutcome struct {
	kernel
	reported error
	phase    string
	hung     bool
	extra    int
	all      []string
}

func (o kernelOutcome) ok() bool {
	if o.hung {
		return false
	}
	if o.want == nil {
		return o.reported == nil
	}
	return errors.Is(o.reported, o.want) && o.extra == 0
}

func runKernel(kn kernel) kernelOutcome {
	forgetReports()
	k := &kernelRun{}
	restore := SetHandler(k.handle)
	defer restore()
	kn.run(k)
	out := kernelOutcome{kernel: kn}
	out.hung = !k.join()
	for _, f := range k.cleanups {
		f()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.reports) > 0 {
		out.reported, out.phase = k.reports[0].Kind, k.phases[0]
		out.extra = len(k.reports) - 1
		for _, r := range k.reports {
			out.all = append(out.all, r.headline())
		}
	}
	return out
}

// TestKernels runs the kernel suite and prints its coverage table.
func TestKernels(t *testing.T) {
	var outs []kernelOutcome
	for _, kn := range kernels {
		t.Run(kn.name, func(t *testing.T) {
			o := runKernel(kn)
			outs = append(outs, o)
			switch {
			case o.hung:
				t.Fatalf("%s hung (no report in %v)", kn.name, kernelTimeout)
			case !o.ok():
				t.Errorf("%s: reported %q in %q, want %v", kn.name, o.all, o.phase, o.want)
			}
		})
	}
	t.Log("\n" + coverageTable(outs))
}

func coverageTable(outs []kernelOutcome) string {
	var b strings.Builder
	b.WriteString("| kernel | class | mechanism | expected | reported before any hang | when |\n|---|---|---|---|---|---|\n")
	type tally struct{ n, ok int }
	byClass := map[string]*tally{}
	var order []string
	for _, o := range outs {
		want, got, when := "none", "none", "-"
		if o.want != nil {
			want = o.want.Error()
		}
		if o.reported != nil {
			got, when = o.reported.Error(), o.phase
		}
		if o.hung {
			got = "HUNG"
		}
		mark := "yes"
		if !o.ok() {
			mark = "NO"
		}
		if o.want == nil {
			mark = "no false report"
			if !o.ok() {
				mark = "FALSE REPORT"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s: %s | %s |\n", o.name, o.class, o.mechanism, want, mark, got, when)
		if byClass[o.class] == nil {
			byClass[o.class] = &tally{}
			order = append(order, o.class)
		}
		byClass[o.class].n++
		if o.ok() {
			byClass[o.class].ok++
		}
	}
	b.WriteString("\n| class | kernels | as expected |\n|---|---|---|\n")
	for _, c := range order {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", c, byClass[c].n, byClass[c].ok)
	}
	return b.String()
}
