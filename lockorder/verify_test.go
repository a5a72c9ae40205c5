//go:build lockorder || race

package lockorder

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeT records VerifyNone's verdict.
type fakeT struct{ errs []string }

func (f *fakeT) Helper()           {}
func (f *fakeT) Error(args ...any) { f.errs = append(f.errs, fmt.Sprint(args...)) }

func TestVerifyNoneCleanRun(t *testing.T) {
	m := classed("vn.clean", 0)
	m.Lock()
	work.Add(1)
	m.Unlock()
	ft := &fakeT{}
	VerifyNone(ft)
	require.Empty(t, ft.errs)
}

func TestVerifyNoneLockLeftByExitedGoroutine(t *testing.T) {
	m := classed("vn.exited", 0)
	run(func() { m.Lock() }) // the goroutine exits holding m
	ft := &fakeT{}
	start := time.Now()
	VerifyNone(ft)
	require.Less(t, time.Since(start), verifyWait, "an exited holder needs no grace period")
	require.Len(t, ft.errs, 1)
	require.Contains(t, ft.errs[0], "vn.exited held by goroutine")
	require.Contains(t, ft.errs[0], "which has exited: a missing Unlock")
	m.Unlock()
	ft = &fakeT{}
	VerifyNone(ft)
	require.Empty(t, ft.errs)
}

func TestVerifyNoneLockHeldByTheTest(t *testing.T) {
	var rw RWMutex
	rw.SetClass(NewClass("vn.self", 0))
	rw.RLock()
	ft := &fakeT{}
	VerifyNone(ft)
	rw.RUnlock()
	require.Len(t, ft.errs, 1)
	require.Contains(t, ft.errs[0], "vn.self read-locked by the test's goroutine")
}

// TestVerifyNoneWaitsForRunningHolders: a goroutine that releases its lock
// shortly after the check starts is not reported; one that stays blocked
// is, with its current stack.
func TestVerifyNoneWaitsForRunningHolders(t *testing.T) {
	m := classed("vn.running", 0)
	locked, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Lock()
		close(locked)
		<-release
		m.Unlock()
	}()
	<-locked
	go func() {
		// Released only once VerifyNone has seen it held.
		require.Eventually(t, func() bool { return totalHeld() == 1 }, 10*time.Second, time.Millisecond)
		close(release)
	}()
	ft := &fakeT{}
	VerifyNone(ft)
	require.Empty(t, ft.errs)
	<-done

	// Blocked for good (until the test lets it go): reported after the
	// grace period, as still running, with the place it waits.
	m.Lock()
	waiterDone := make(chan struct{})
	go func() {
		defer close(waiterDone)
		blockedOnLock(m)
	}()
	require.Eventually(t, func() bool { return totalHeld() == 2 }, 10*time.Second, time.Millisecond)
	msg := verifyNone(20 * time.Millisecond)
	m.Unlock()
	<-waiterDone
	require.Contains(t, msg, "vn.running held by the test's goroutine")
	require.Contains(t, msg, "vn.running waited for by goroutine")
	require.Contains(t, msg, "still running (leaked or deadlocked)")
	require.Contains(t, msg, "lockorder.blockedOnLock")
}

func blockedOnLock(m *Mutex) {
	m.Lock()
	work.Add(1)
	m.Unlock()
}
