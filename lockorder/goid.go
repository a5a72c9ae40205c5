//go:build lockorder || race

package lockorder

import (
	"runtime"
	"unsafe"
)

// goidOffset is the offset of the goroutine id inside the runtime's
// goroutine descriptor, found and verified once at start-up. It stays -1
// (the slow, always-correct runtime.Stack path) when the architecture has
// no getg or when the layout could not be confirmed.
var goidOffset = findGoidOffset()

// goidScan bounds the search: the id lives in the first ~160 bytes of the
// descriptor in every Go release since 1.9, and the descriptor is larger
// than this, so the probe never reads past its allocation.
const goidScan = 256

// curGoid returns the current goroutine's id, the same number runtime.Stack
// prints after "goroutine".
func curGoid() int64 {
	if goidOffset >= 0 {
		return *(*int64)(unsafe.Add(getg(), goidOffset))
	}
	return stackGoid()
}

// stackGoid parses the id out of the first line of runtime.Stack. It costs
// about a microsecond and is correct on every Go version.
func stackGoid() int64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	const prefix = "goroutine "
	if n <= len(prefix) || string(buf[:len(prefix)]) != prefix {
		return 0
	}
	var id int64
	for _, c := range buf[len(prefix):n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + int64(c-'0')
	}
	return id
}

// goidCandidates returns the offsets inside the current goroutine's
// descriptor that hold its id.
func goidCandidates() []int {
	g := getg()
	if g == nil {
		return nil
	}
	id := stackGoid()
	var offs []int
	for off := 0; off+8 <= goidScan; off += 8 {
		if *(*int64)(unsafe.Add(g, off)) == id {
			offs = append(offs, off)
		}
	}
	return offs
}

// findGoidOffset intersects the candidate offsets seen from several fresh
// goroutines (each has a distinct, larger id, so a field that equals the id
// by chance in one of them drops out) and then verifies the survivor on
// further goroutines. Any doubt selects the slow path: a wrong id would
// produce false reports, a slow one only costs time.
func findGoidOffset() int {
	if getg() == nil {
		return -1
	}
	probe := func() []int {
		ch := make(chan []int)
		go func() { ch <- goidCandidates() }()
		return <-ch
	}
	cand := goidCandidates()
	for i := 0; i < 8 && len(cand) > 0; i++ {
		cand = intersect(cand, probe())
	}
	if len(cand) != 1 {
		return -1
	}
	off := cand[0]
	for i := 0; i < 8; i++ {
		ch := make(chan bool)
		go func() {
			ch <- *(*int64)(unsafe.Add(getg(), off)) == stackGoid()
		}()
		if !<-ch {
			return -1
		}
	}
	return off
}

func intersect(a, b []int) []int {
	var out []int
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
				break
			}
		}
	}
	return out
}
