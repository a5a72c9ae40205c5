package spawn

import (
	"context"

	"github.com/garrison-go/garrison/internal/criticality"
)

// Criticality is how important a task is; under overload the least
// important work is refused first. It is the same type as
// limiter.Criticality, so the level limiter's CriticalityMiddleware sets on
// a request's context is the level a task submitted with that context
// carries.
//
// A task's criticality is read from the context it is submitted with (Go,
// GoKey, Submit; a Group's tasks from the Group's context), only when the spawner is at least three quarters full:
// work marked [Sheddable] may fill 75 % of the spawner's capacity (running
// tasks plus queue), [Normal] 90 %, [Critical] all of it, so that critical
// work keeps a reserved tenth and sheddable work is refused while a quarter
// is still free. These are the shares limiter's adaptive middleware gives
// requests. Work whose context carries no criticality (and TryGo, TryGoKey,
// TrySubmit, which take no context) is not ranked: it may fill the whole
// capacity, as before priorities existed, so a service that marks nothing
// sees no change. A refusal for want of a level's share is an error
// matching [ErrSaturated] that says so, counted by level in [Stats].
type Criticality = criticality.Level

// The criticality levels, least important first.
const (
	// Sheddable tasks are refused first: prefetches, batch work, retries
	// a client will make again anyway.
	Sheddable = criticality.Sheddable
	// Normal is the level of work marked as ordinary.
	Normal = criticality.Normal
	// Critical tasks keep a reserved share: what a user waits for.
	Critical = criticality.Critical
)

// WithCriticality returns a copy of ctx that carries c, for Go, GoKey and
// Submit; an invalid c is stored as [Normal], so that a bad value buys no
// priority.
func WithCriticality(ctx context.Context, c Criticality) context.Context {
	return criticality.With(ctx, c)
}

// CriticalityFrom returns the criticality ctx carries, [Normal] if none.
func CriticalityFrom(ctx context.Context) Criticality { return criticality.From(ctx) }

// levelCap is how many admitted tasks, out of capacity c, leave room for a
// task of level lv.
func levelCap(c int64, lv criticality.Level) int64 {
	if lv >= criticality.Critical {
		return c
	}
	return max(1, int64(float64(c)*criticality.Share(lv)))
}

// levelIndex maps Sheddable, Normal and Critical to 0, 1 and 2.
func levelIndex(lv criticality.Level) int {
	return int(min(max(lv, criticality.Sheddable), criticality.Critical) + 1)
}
