package lockorder

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
)

// leakProfile is the name of Go's goroutine leak profile: present when the
// toolchain was built or run with GOEXPERIMENT=goroutineleakprofile (Go
// 1.26; planned on by default later). Looked up by name at run time, so
// this package builds and works without it.
const leakProfile = "goroutineleak"

// LeakProfileAvailable reports whether Go's goroutine leak profile is
// available. When it is, VerifyNone and the watchdog use it to confirm
// that blocked goroutines can never be woken (their blocking objects are
// unreachable from any runnable goroutine): a partial deadlock.
func LeakProfileAvailable() bool { return pprof.Lookup(leakProfile) != nil }

// leakedGoroutines runs the leak-detecting garbage collection and returns
// the stacks of the goroutines it found blocked forever, by id; ok is false
// without the profile.
func leakedGoroutines() (leaked map[int64]string, ok bool) {
	p := pprof.Lookup(leakProfile)
	if p == nil {
		return nil, false
	}
	var buf bytes.Buffer
	// debug=2: every goroutine's stack, after the leak detection ran;
	// leaked ones say so in their header ("[chan receive (leaked)]").
	if err := p.WriteTo(&buf, 2); err != nil {
		return nil, false
	}
	leaked = map[int64]string{}
	for _, g := range strings.Split(buf.String(), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if !strings.Contains(header, "(leaked)") {
			continue
		}
		rest, _ := strings.CutPrefix(header, "goroutine ")
		idStr, _, _ := strings.Cut(rest, " ")
		if id, err := strconv.ParseInt(idStr, 10, 64); err == nil {
			leaked[id] = strings.TrimRight(g, "\n")
		}
	}
	return leaked, true
}

// leakReport returns the part of VerifyNone's message that the leak
// profile confirms: each leaked goroutine with the locks of this package
// that it holds and waits for (recs). Without the profile it returns "",
// and VerifyNone's other findings say that leaks could not be confirmed.
func leakReport(_ map[int64]string, recs []heldRecord) string {
	leaked, ok := leakedGoroutines()
	if !ok || len(leaked) == 0 {
		return ""
	}
	ids := make([]int64, 0, len(leaked))
	for id := range leaked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	fmt.Fprintf(&b, "\nlockorder: Go's goroutine leak profile found %d goroutine(s) blocked forever:\n", len(ids))
	for _, id := range ids {
		var holds, waits []string
		for _, r := range recs {
			if r.gid != id {
				continue
			}
			if r.waiting {
				waits = append(waits, r.class)
			} else {
				holds = append(holds, r.class)
			}
		}
		fmt.Fprintf(&b, "  goroutine %d", id)
		if len(holds) > 0 {
			fmt.Fprintf(&b, " holding %s", strings.Join(holds, ", "))
		}
		if len(waits) > 0 {
			fmt.Fprintf(&b, " waiting for %s", strings.Join(waits, ", "))
		}
		b.WriteString(":\n")
		b.WriteString(indentBlock(leaked[id], "        "))
	}
	return b.String()
}
