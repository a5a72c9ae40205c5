package spawn

import (
	"context"
	"reflect"
	"time"
)

// valuesCtx is the context of a Go, TryGo or GoKey task submitted with a
// context that carries values: it has the submitter's values and the
// spawner's cancellation (Shutdown giving up), not the submitter's, like
// context.WithoutCancel(submitCtx) joined with the spawner's context.
//
// It is immutable, so one valuesCtx serves every task submitted with the
// same context: the spawner keeps the last one made and workers reuse it
// while tasks keep coming from the same submit context, which is how a
// batch fanned out from one request costs one allocation, not one per
// task. A task submitted with a task context of the same spawner reuses
// that context as is.
type valuesCtx struct {
	s      *Spawner
	parent context.Context
}

func (c *valuesCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *valuesCtx) Done() <-chan struct{}       { return c.s.taskCtx.Done() }
func (c *valuesCtx) Err() error                  { return c.s.taskCtx.Err() }
func (c *valuesCtx) String() string              { return "spawn.taskContext" }

// Value answers the spawner's own keys from the spawner's context (the
// task marker, and the key under which the context package finds the
// nearest standard cancelable context, so that context.Cause and
// derivation follow the cancellation this context really has), and every
// other key from the submitter's context.
func (c *valuesCtx) Value(key any) any {
	switch key {
	case ctxKey{}:
		return c.s
	case cancelKey:
		return c.s.taskCtx.Value(key)
	}
	return c.parent.Value(key)
}

// valuesFor returns the context for a Go task submitted with parent (nil
// for TryGo).
func (s *Spawner) valuesFor(parent context.Context) context.Context {
	if parent == nil || parent == context.Background() || parent == context.TODO() || parent == s.taskCtx {
		return s.taskCtx
	}
	switch c := parent.(type) {
	case *valuesCtx:
		if c.s == s {
			return c
		}
	case *groupMark:
		// A Group task: its context is the group's.
		return c.gc
	}
	// lastVals only ever holds a context of a comparable type (contexts
	// are almost always pointers), so this == cannot panic: it compares
	// the dynamic types first, and values only of that comparable type.
	if last := s.lastVals.Load(); last != nil && last.parent == parent {
		return last
	}
	vc := &valuesCtx{s: s, parent: parent}
	if reflect.TypeOf(parent).Comparable() {
		s.lastVals.Store(vc)
	}
	return vc
}

// cancelKey is the key the context package looks up (context.Cause does) to
// find the nearest standard cancelable context of a chain. A context that
// delegates values to a parent with a different cancellation must not let
// that lookup through. The key is unexported, so it is learned once by
// watching context.Cause ask for it; should a future Go look it up
// differently, cancelKey stays nil and matches no real key.
var cancelKey = func() any {
	var p keyProbe
	_ = context.Cause(&p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Err() error { return nil }

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}
