package lockorder

import (
	"strings"
	"time"
)

// TestingT is the part of testing.TB that VerifyNone uses.
type TestingT interface {
	Helper()
	Error(args ...any)
}

// verifyWait bounds how long VerifyNone waits for running goroutines to
// release their locks before it reports them.
const verifyWait = time.Second

// VerifyNone fails t if, at the time of the call, a lock of this package
// is still held or waited for: by the calling goroutine (a missing Unlock
// in the test), by a goroutine that has exited (a missing Unlock that no
// one can ever fix: the next Lock hangs), or by a goroutine still running
// after up to a second of grace (a leaked or deadlocked goroutine). Each
// finding names the lock's class, the goroutine, whether it has exited,
// and the goroutine's current stack, or the acquisition stack if the
// watchdog was running when the lock was taken. Call it at the end of a
// test, usually deferred first so that it runs last:
//
//	func TestCache(t *testing.T) {
//		defer lockorder.VerifyNone(t)
//		...
//	}
//
// Like goleak.VerifyNone it sees the whole process: do not use it in
// parallel tests. When the toolchain offers Go's goroutine leak profile
// (GOEXPERIMENT=goroutineleakprofile), VerifyNone also fails on goroutines
// that profile finds blocked forever, with the locks they hold; see
// LeakProfileAvailable. In production builds nothing is tracked and only
// the leak profile, if available, is checked.
func VerifyNone(t TestingT) {
	t.Helper()
	if msg := verifyNone(verifyWait); msg != "" {
		t.Error(msg)
	}
}

func indentBlock(s, pad string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad) + "\n"
}
