package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConvertFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	only := write("only.go", `package p

import "sync"

type cache struct {
	mu   sync.RWMutex
	sync.Mutex
}

var global = new(sync.Mutex)
`)
	mixed := write("mixed.go", `package p

import "sync"

var once sync.Once
var mu sync.Mutex
`)
	none := write("none.go", `package p

import "sync"

var wg sync.WaitGroup
`)
	files, refs, err := convertTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if files != 2 || refs != 4 {
		t.Fatalf("converted %d references in %d files, want 4 in 2", refs, files)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	got := read(only)
	for _, want := range []string{`"github.com/garrison-go/garrison/lockorder"`, "mu lockorder.RWMutex", "\tlockorder.Mutex\n", "new(lockorder.Mutex)"} {
		if !strings.Contains(got, want) {
			t.Errorf("only.go lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, `"sync"`) {
		t.Errorf("only.go still imports sync, which nothing uses:\n%s", got)
	}
	if got := read(mixed); !strings.Contains(got, `"sync"`) || !strings.Contains(got, "sync.Once") || !strings.Contains(got, "lockorder.Mutex") {
		t.Errorf("mixed.go must keep sync for its Once:\n%s", got)
	}
	if got := read(none); strings.Contains(got, "lockorder") {
		t.Errorf("none.go has no mutex and must not change:\n%s", got)
	}
}
