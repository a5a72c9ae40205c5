// Package escape holds pointers escaping changuard callbacks.
package escape

import (
	"context"

	"github.com/garrison-go/garrison/changuard"
)

type State struct {
	n     int
	items []*Item
	byKey map[string]int
}

type Item struct{ v int }

type Holder struct{ s *State }

var leakedGlobal *State

func Leaks(ctx context.Context, g *changuard.Guarded[State], h *Holder, c chan *State, o *changuard.Owner[State]) error {
	var outside *State
	g.With(func(s *State) {
		outside = s // want `pointer lent to the changuard.Guarded.With callback escapes it: assigned to outside, a variable declared outside the callback`
	})
	g.With(func(s *State) {
		h.s = s // want `stored in field s of a value outside it`
	})
	g.With(func(s *State) {
		leakedGlobal = s // want `stored in package variable leakedGlobal`
	})
	g.With(func(s *State) {
		c <- s // want `sent on a channel` `channel send while the lock of Guarded g is held`
	})
	var first *Item
	g.With(func(s *State) {
		first = s.items[0] // want `assigned to first`
	})
	var m map[string]int
	if err := g.WithContext(ctx, func(s *State) {
		m = s.byKey // want `changuard.Guarded.WithContext callback escapes it: assigned to m`
	}); err != nil {
		return err
	}
	p := changuard.WithResult(g, func(s *State) *State {
		return s // want `changuard.WithResult callback escapes it: returned`
	})
	_ = p
	g.With(func(s *State) {
		go func() { s.n++ }() // want `used by a goroutine that outlives the callback`
	})
	_ = o.Post(func(s *State) {
		leakedGlobal = s // want `changuard.Owner.Post callback escapes it`
	})
	q, err := changuard.Call(ctx, o, func(s *State) (*State, error) {
		return s, nil // want `changuard.Call callback escapes it: returned`
	})
	if err != nil {
		return err
	}
	_ = q
	g.TryWith(func(s *State) {
		h.s = s // want `changuard.Guarded.TryWith callback escapes it: stored in field s`
	})
	_, _ = outside, first
	_ = m
	return nil
}

func Fine(g *changuard.Guarded[State]) (int, []*Item) {
	var n int
	var items []*Item
	g.With(func(s *State) {
		n = s.n                                  // a copy
		items = append([]*Item(nil), s.items...) // a new slice (its elements are shared, by design of State)
		s.items = append(s.items, &Item{v: n})   // stays inside
		s.byKey["x"] = n
		local := s
		local.n++
	})
	total := changuard.WithResult(g, func(s *State) int { return s.n })
	return n + total, items
}
