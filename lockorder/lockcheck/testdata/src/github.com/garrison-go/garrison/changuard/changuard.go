// Package changuard is a stub of the garrison package.
package changuard

import (
	"context"
	"sync"
)

type Chan[T any] struct{ c chan T }

func (c *Chan[T]) Send(ctx context.Context, v T) error { c.c <- v; return nil }
func (c *Chan[T]) Recv(ctx context.Context) (T, error) { return <-c.c, nil }

type Guarded[T any] struct {
	mu sync.Mutex
	v  T
}

func (g *Guarded[T]) With(f func(*T)) { g.mu.Lock(); defer g.mu.Unlock(); f(&g.v) }
func (g *Guarded[T]) Read(f func(T))  { g.mu.Lock(); defer g.mu.Unlock(); f(g.v) }

func (g *Guarded[T]) WithContext(ctx context.Context, f func(*T)) error {
	g.With(f)
	return nil
}

func WithResult[T, R any](g *Guarded[T], f func(*T) R) R {
	var r R
	g.With(func(v *T) { r = f(v) })
	return r
}

type Owner[T any] struct{ v T }

func (o *Owner[T]) Post(f func(*T)) error { f(&o.v); return nil }

func Call[T, R any](ctx context.Context, o *Owner[T], f func(*T) (R, error)) (R, error) {
	return f(&o.v)
}

func (g *Guarded[T]) TryWith(f func(*T)) bool { g.With(f); return true }
