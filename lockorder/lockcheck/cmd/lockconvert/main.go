// Command lockconvert rewrites a Go source tree to use lockorder's
// mutexes: every sync.Mutex and sync.RWMutex type becomes
// lockorder.Mutex and lockorder.RWMutex, with the import added (and
// "sync" dropped where nothing else uses it). It is how garrison's CI
// runs well-known projects' own test suites with lock-order checking on
// (.ci/checks/lockorder-projects.sh); the tree is a scratch copy, never
// committed.
//
//	lockconvert DIR
//
// It prints how many files and how many type references it changed.
// Everything else is left as it is: a project that copies a mutex, or
// passes one where a *sync.Mutex is expected, fails to compile, which the
// check reports as such.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/ast/astutil"
)

const lockorderPath = "github.com/garrison-go/garrison/lockorder"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lockconvert DIR")
		os.Exit(2)
	}
	files, refs, err := convertTree(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "lockconvert:", err)
		os.Exit(1)
	}
	fmt.Printf("lockconvert: %d type references in %d files now lockorder's\n", refs, files)
}

func convertTree(root string) (files, refs int, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		n, err := convertFile(path)
		if n > 0 {
			files++
			refs += n
		}
		return err
	})
	return files, refs, err
}

// convertFile rewrites one file and returns how many references changed.
func convertFile(path string) (int, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return 0, err
	}
	syncName := importName(f, "sync")
	if syncName == "" {
		return 0, nil
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		sel, ok := node.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok || x.Name != syncName || x.Obj != nil {
			return true
		}
		if sel.Sel.Name == "Mutex" || sel.Sel.Name == "RWMutex" {
			x.Name = "lockorder"
			n++
		}
		return true
	})
	if n == 0 {
		return 0, nil
	}
	astutil.AddImport(fset, f, lockorderPath)
	if !astutil.UsesImport(f, "sync") {
		astutil.DeleteImport(fset, f, "sync")
	}
	var out bytes.Buffer
	if err := format.Node(&out, fset, f); err != nil {
		return 0, err
	}
	return n, os.WriteFile(path, out.Bytes(), 0o644)
}

// importName returns the name under which f imports path, "" if it does
// not.
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if strings.Trim(imp.Path.Value, `"`) != path {
			continue
		}
		if imp.Name != nil {
			if imp.Name.Name == "_" || imp.Name.Name == "." {
				return ""
			}
			return imp.Name.Name
		}
		return path[strings.LastIndex(path, "/")+1:]
	}
	return ""
}
