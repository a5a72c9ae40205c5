//go:build lockorder || race

package lockorder

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func heldRecords() []heldRecord {
	var out []heldRecord
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		for _, gl := range s.m {
			for _, e := range gl.held {
				out = append(out, heldRecord{
					class: e.class.String(), gid: e.gid, read: e.read,
					waiting: e.state.Load() == stateWaiting,
					pcs:     append([]uintptr(nil), e.pcs...),
				})
			}
		}
		s.mu.Unlock()
	}
	return out
}

// goroutineStacks returns the stack of every live goroutine by id.
func goroutineStacks() map[int64]string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int64]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		rest, ok := strings.CutPrefix(g, "goroutine ")
		if !ok {
			continue
		}
		idStr, _, _ := strings.Cut(rest, " ")
		if id, err := strconv.ParseInt(idStr, 10, 64); err == nil {
			out[id] = g
		}
	}
	return out
}

// verifyNone returns VerifyNone's failure message, or "". Locks of live
// goroutines other than the caller get up to grace to be released; locks
// of the caller and of exited goroutines are reported at once, since
// nothing can release them any more.
func verifyNone(grace time.Duration) string {
	self := curGoid()
	deadline := time.Now().Add(grace)
	delay := time.Millisecond
	for {
		// A holder missing from the list of live goroutines has exited
		// only if its record was there before the list was taken and is
		// still there after it: one that unlocked and exited in between
		// is gone from the second read (see exitedHolders).
		before := heldRecords()
		live := goroutineStacks()
		recs := slices.DeleteFunc(heldRecords(), func(r heldRecord) bool {
			_, alive := live[r.gid]
			return !alive && !slices.ContainsFunc(before, func(b heldRecord) bool { return b.same(r) })
		})
		final := time.Now().After(deadline)
		var lines []string
		pendingLive := false
		for _, r := range recs {
			stack, alive := live[r.gid]
			if alive && r.gid != self && !final {
				pendingLive = true
				continue
			}
			lines = append(lines, describeHeld(r, alive, r.gid == self, stack))
		}
		if !pendingLive || final {
			leaks := leakReport(live, recs)
			if len(lines) == 0 && leaks == "" {
				return ""
			}
			msg := ""
			if len(lines) > 0 {
				msg = fmt.Sprintf("lockorder: %d lock(s) still held or waited for at the end of the test:\n%s", len(lines), strings.Join(lines, ""))
				if !LeakProfileAvailable() {
					msg += "  (Go's goroutine leak profile is not available to confirm which goroutines are blocked forever: build with GOEXPERIMENT=goroutineleakprofile, Go 1.26+)\n"
				}
			}
			return strings.TrimRight(msg+leaks, "\n")
		}
		time.Sleep(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func (r heldRecord) same(o heldRecord) bool {
	return r.gid == o.gid && r.class == o.class && r.read == o.read && r.waiting == o.waiting
}

func describeHeld(r heldRecord, alive, self bool, stack string) string {
	verb := "held"
	switch {
	case r.waiting:
		verb = "waited for"
	case r.read:
		verb = "read-locked"
	}
	var b strings.Builder
	switch {
	case self:
		fmt.Fprintf(&b, "  %s %s by the test's goroutine %d (a missing Unlock)\n", r.class, verb, r.gid)
	case !alive:
		fmt.Fprintf(&b, "  %s %s by goroutine %d, which has exited: a missing Unlock; the next Lock hangs\n", r.class, verb, r.gid)
	default:
		fmt.Fprintf(&b, "  %s %s by goroutine %d, still running (leaked or deadlocked); it is at:\n", r.class, verb, r.gid)
		b.WriteString(indentBlock(stack, "        "))
	}
	if len(r.pcs) > 0 {
		b.WriteString("      acquired at:\n")
		writeStack(&b, r.pcs, "        ")
	} else if !alive || self {
		b.WriteString("      (acquisition stack not recorded: it is while SetWatchdog runs)\n")
	}
	return b.String()
}
