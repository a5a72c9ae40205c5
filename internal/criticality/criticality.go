// Package criticality holds the one criticality a request or a task carries
// on its context, so that a level set by limiter's middleware is the level
// spawn's admission reads: both packages re-export [Level] as an alias.
//
// Under overload a service sheds its least important work first (Google's
// SRE book, "Handling Overload"): [Sheddable] work goes first, [Critical]
// work keeps a reserved share of capacity. Unmarked work is [Normal].
package criticality

import (
	"context"
	"fmt"
)

// Level is how important a piece of work is. Its zero value is [Normal].
type Level int8

// The levels, least important first.
const (
	// Sheddable work is refused first under overload: prefetches, batch
	// jobs, retries a client will make again anyway.
	Sheddable Level = -1
	// Normal is the default for work that says nothing.
	Normal Level = 0
	// Critical work keeps a reserved share of capacity: what the user is
	// waiting for, health and control traffic.
	Critical Level = 1
)

// String returns "sheddable", "normal" or "critical": stable metrics labels
// and the values [Parse] accepts.
func (l Level) String() string {
	switch l {
	case Sheddable:
		return "sheddable"
	case Normal:
		return "normal"
	case Critical:
		return "critical"
	default:
		return fmt.Sprintf("criticality(%d)", int8(l))
	}
}

// Valid reports whether l is one of the three levels.
func (l Level) Valid() bool { return l >= Sheddable && l <= Critical }

// Parse returns the level String names, for a header or a flag.
func Parse(s string) (Level, error) {
	switch s {
	case "sheddable":
		return Sheddable, nil
	case "normal", "default", "":
		return Normal, nil
	case "critical":
		return Critical, nil
	default:
		return Normal, fmt.Errorf("unknown criticality %q (want sheddable, normal or critical)", s)
	}
}

type key struct{}

// With returns a copy of ctx that carries l. An invalid l is stored as
// [Normal]: a bad value must not buy priority.
func With(ctx context.Context, l Level) context.Context {
	if !l.Valid() {
		l = Normal
	}
	return context.WithValue(ctx, key{}, l)
}

// From returns the level ctx carries, [Normal] when none (or a nil ctx).
func From(ctx context.Context) Level {
	if ctx == nil {
		return Normal
	}
	if l, ok := ctx.Value(key{}).(Level); ok {
		return l
	}
	return Normal
}

// Lookup returns the level ctx carries and whether it carries one, for a
// caller that treats unmarked work differently from work marked [Normal].
func Lookup(ctx context.Context) (Level, bool) {
	if ctx == nil {
		return Normal, false
	}
	l, ok := ctx.Value(key{}).(Level)
	return l, ok
}

// Share is the fraction of a concurrency limit that work of level l may
// fill: all of it for Critical, 90 % for Normal (so that a tenth is always
// left to critical work), 75 % for Sheddable (so that sheddable work is
// refused first, while the limit is still a quarter short). The fractions
// are fixed rather than configurable: they decide only who is refused first
// when the limit is reached, not how much work runs.
func Share(l Level) float64 {
	switch {
	case l >= Critical:
		return 1
	case l <= Sheddable:
		return 0.75
	default:
		return 0.9
	}
}
