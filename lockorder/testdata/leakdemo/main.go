// Command leakdemo runs a partial deadlock (two goroutines in an AB-BA
// embrace while the program goes on) and prints what lockorder.VerifyNone
// says about it. Built with GOEXPERIMENT=goroutineleakprofile, Go's leak
// profile confirms both goroutines are blocked forever and VerifyNone
// lists the locks each holds and waits for. Run by TestLeakProfile...
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/garrison-go/garrison/lockorder"
)

type printer struct{ out strings.Builder }

func (p *printer) Helper()           {}
func (p *printer) Error(args ...any) { fmt.Fprintln(&p.out, args...) }

func main() {
	if !lockorder.Enabled() {
		fmt.Println("SKIP: build with -race or -tags lockorder")
		return
	}
	if !lockorder.LeakProfileAvailable() {
		fmt.Println("SKIP: Go's goroutine leak profile is not available (GOEXPERIMENT=goroutineleakprofile, Go 1.26+)")
		return
	}
	// Report, then let the deadlock happen: that is what is demonstrated.
	restore := lockorder.SetHandler(func(e *lockorder.OrderError) {
		fmt.Println("reported before the hang:", strings.SplitN(e.Error(), "\n", 2)[0])
	})
	defer restore()
	partialDeadlock()
	var p printer
	lockorder.VerifyNone(&p)
	fmt.Print(p.out.String())
	if p.out.Len() == 0 {
		os.Exit(1)
	}
}

// partialDeadlock leaves two goroutines blocked on each other's mutex. The
// mutexes are reachable only from those two goroutines once it returns.
func partialDeadlock() {
	a, b := new(lockorder.Mutex), new(lockorder.Mutex)
	a.SetClass(lockorder.NewClass("demo.A", 0))
	b.SetClass(lockorder.NewClass("demo.B", 0))
	aLocked, bLocked := make(chan struct{}), make(chan struct{})
	go func() {
		a.Lock()
		close(aLocked)
		<-bLocked
		b.Lock()
	}()
	go func() {
		<-aLocked
		b.Lock()
		close(bLocked)
		a.Lock()
	}()
	<-bLocked
}
