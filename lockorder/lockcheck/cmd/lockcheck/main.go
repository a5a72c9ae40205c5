// Command lockcheck runs the [lockcheck.Analyzer] over Go packages: it
// reports blocking operations made while a mutex is held, lock order
// inversions between the functions of a package, and pointers that escape
// a changuard callback.
//
// Standalone, on package patterns:
//
//	lockcheck ./...
//
// Under go vet, which checks each package with the same build flags as the
// compiler (build tags, test files):
//
//	go vet -vettool=$(command -v lockcheck) ./...
//
// It exits with status 3 when it reports something (go vet: 1), 0 when
// not. A report is silenced by a "//lockcheck:ignore reason" comment on its
// line or the line above.
package main

import (
	"github.com/garrison-go/garrison/lockorder/lockcheck"
	"golang.org/x/tools/go/analysis/singlechecker"
)

func main() { singlechecker.Main(lockcheck.Analyzer) }
