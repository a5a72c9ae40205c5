package spawn

import (
	"context"
	"errors"
	"time"

	"github.com/garrison-go/garrison/internal/criticality"
)

// Go runs task on a worker. If the spawner is full it waits for room until
// ctx is done, as one of at most MaxWaiters waiting callers, in about FIFO
// order with other waiting callers. It returns nil once the task is
// admitted (the task may still be queued), or why it was rejected, in which
// case task never runs: ErrClosed, ErrOverloaded, ErrRateLimited,
// ErrSaturated when MaxWaiters callers already wait, ErrWouldDeadlock when
// the caller is a task of this spawner (see below), ctx's error wrapping
// context.Cause(ctx) when ctx is already done (checked first: a done ctx
// fails at once even if there is room) or becomes done first,
// ErrNilContext for a nil ctx, or an error for a nil task or a nil
// spawner.
//
// Once callers wait, room is handed to them when the admitted tasks drop to
// MaxConcurrent plus half the queue, not at every finished task: a waiting
// caller may stay parked, and its ctx may end, while the queue has a few
// free places (which TryGo may take).
//
// An admitted task ends in exactly one state of Stats: Panicked if it
// panicked or called runtime.Goexit (see PanicError for where the panic is
// reported); else, if its context ended before it returned, TimedOut (task
// timeout) or Canceled (Shutdown giving up, or Handle.Cancel), whatever it
// returned; else Failed or Succeeded by its error. Tasks dropped before
// running are Canceled, or Shed when queue-time shedding dropped them (see
// WithQueueTarget). Go reports no task error: use a Group to get the
// errors of a batch back, or Submit for one task's result.
//
// The task's context carries ctx's values (request ids, trace spans) but
// not its cancellation: ctx bounds only the wait to be admitted and the
// time spent queued (a task whose ctx is done when a worker picks it up is
// canceled without running, unless ctx is the context of a task of this
// spawner: a child is never dropped because its parent returned). Carrying
// the values costs no allocation per task for a batch submitted with one
// ctx (see the package doc). The task's context carries the task timeout,
// is canceled if Shutdown gives up waiting, and marks the task as belonging
// to this spawner: a task that calls Go with that context (or one derived
// from it) while the spawner is full gets ErrWouldDeadlock instead of
// waiting for a slot it may itself be holding. A task that calls Go with an
// unrelated context is not recognized.
func (s *Spawner) Go(ctx context.Context, task func(context.Context) error) error {
	return s.submitCtx(ctx, job{fn: task, ctx: ctx}, "", false)
}

// TryGo runs task on a worker if the spawner can admit it right now. It
// never blocks: it returns nil once the task is admitted, or ErrSaturated,
// ErrRateLimited, ErrOverloaded or ErrClosed. Rejection costs a few atomic
// operations and no allocation. The task's context carries no submitter's
// values.
func (s *Spawner) TryGo(task func(context.Context) error) error {
	if s == nil {
		return errNilSpawner
	}
	return s.submit(context.Background(), job{fn: task}, "", false, false)
}

// GoKey is Go for a task that belongs to key (a tenant, a client address).
// With WithPerKey each key may have at most maxPerKey tasks running, queued
// or waiting for room, and a key over its share is rejected at once with
// ErrKeyLimit rather than waiting, as is a new key when the key table is
// full. Without WithPerKey the key is ignored.
func (s *Spawner) GoKey(ctx context.Context, key string, task func(context.Context) error) error {
	return s.submitCtx(ctx, job{fn: task, ctx: ctx}, key, true)
}

// TryGoKey is GoKey that never blocks, as TryGo is to Go: it returns nil
// once the task is admitted, or ErrKeyLimit, ErrSaturated, ErrRateLimited,
// ErrOverloaded or ErrClosed.
func (s *Spawner) TryGoKey(key string, task func(context.Context) error) error {
	if s == nil {
		return errNilSpawner
	}
	return s.submit(context.Background(), job{fn: task}, key, s.keys != nil, false)
}

// submitCtx is submit for the calls that wait within a caller's ctx.
func (s *Spawner) submitCtx(ctx context.Context, j job, key string, keyed bool) error {
	if s == nil {
		return errNilSpawner
	}
	if ctx == nil {
		return s.reject(ErrNilContext)
	}
	return s.submit(ctx, j, key, keyed && s.keys != nil, true)
}

// submit admits j or says why not, counting the rejection.
//
// The task is counted in Submitted only once it is admitted or rejected, so
// that a caller parked for room or a rate token, which is in none of the
// end states yet, does not break the accounting invariant of Stats.
func (s *Spawner) submit(ctx context.Context, j job, key string, keyed, wait bool) error {
	if err := s.admit(ctx, &j, key, keyed, wait); err != nil {
		if errors.Is(err, ErrSaturated) {
			if lv, ok := criticality.Lookup(ctx); ok {
				s.rejectedLevel[levelIndex(lv)].Add(1)
			}
		}
		return s.reject(err)
	}
	return nil
}

// admit admits j or says why not, waiting for room or a rate token within
// ctx if wait is set, and dispatches it. key counts against the per-key
// limits if keyed. A rejection is not counted: the caller does that.
func (s *Spawner) admit(ctx context.Context, j *job, key string, keyed, wait bool) error {
	if j.fn == nil && j.h == nil {
		return errNilTask
	}
	if s.state.Load()&closedBit != 0 {
		return ErrClosed
	}
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	if s.guard != nil && s.guard.overloaded() {
		return ErrOverloaded
	}
	if s.limiter != nil && !s.limiter.Allow() {
		if !wait {
			return ErrRateLimited
		}
		if err := s.waitRate(ctx); err != nil {
			return err
		}
	}
	if keyed {
		e, err := s.keys.acquire(key)
		if err != nil {
			return err
		}
		j.key = e
	}
	var n int64
	var err error
	if wait {
		n, err = s.admitOrWait(ctx)
	} else {
		n, err = s.tryAdmit(ctx)
	}
	if err != nil {
		if j.key != nil {
			s.keys.release(j.key)
			j.key = nil
		}
		return err
	}
	s.dispatch(*j, n)
	return nil
}

func (s *Spawner) reject(err error) error {
	s.rejected.Add(1)
	if f := s.cfg.hooks.OnReject; f != nil {
		f(err)
	}
	return err
}

// tryAdmit counts one more admitted task if there is room for its
// criticality (read from ctx), and returns the new count.
//
// The criticality is looked up only once the spawner is three quarters
// full (below that every level has room): a context's Value walks its
// chain, which the common path should not pay.
//
// The count of tasks in the spawner it checks is an upper bound, state
// less relSeen, that reads only the submitters' cache line: relSeen is
// loaded before state and is at most the releases of tasks admitted by
// then, so the bound is never below the true count when the CAS admits.
// Only where the bound reaches this call's own cap (the capacity, or its
// level's share of it) is it refreshed from released, once per call, so
// that a refusal rests on the true count as of this call. The refresh
// reads the line the workers write per task; doing it at the call's cap
// rather than at the smallest level's keeps a submitter that runs with a
// full queue, as a batch does, from pulling that line across cores for
// every task.
func (s *Spawner) tryAdmit(ctx context.Context) (int64, error) {
	ranked, marked, fresh := false, false, false
	var lv criticality.Level
	for {
		r := s.relSeen.Load()
		v := s.state.Load()
		if v&closedBit != 0 {
			return 0, ErrClosed
		}
		n := v - r
		c := s.capacity()
		// c - c/4 - 1 is at most levelCap(c, Sheddable), the smallest.
		if n >= c-c/4-1 {
			if !ranked {
				lv, marked = criticality.Lookup(ctx)
				ranked = true
			}
			own := c
			if marked {
				own = levelCap(c, lv)
			}
			if n >= own {
				if !fresh {
					s.seeReleased()
					fresh = true
					continue
				}
				if n >= c {
					return 0, ErrSaturated
				}
				return 0, errReserved
			}
		}
		if s.state.CompareAndSwap(v, v+1) {
			return n + 1, nil
		}
	}
}

// saturated reports whether err is a refusal for want of room (to wait
// for).
func saturated(err error) bool { return err == ErrSaturated || err == errReserved }

// admitOrWait admits a task for a caller that may wait for room: it parks
// the caller until there is room, ctx ends or the spawner shuts down.
//
// Parked callers are woken only once the admitted count is at most lowWater
// (the queue at most half full): a task admitted earlier would only wait
// behind the queued ones, and waking a blocked submitter per finished task
// would cost it a park and an unpark per task, where waking it at half a
// queue lets it refill half a queue at full speed. With no queue, any room
// wakes a waiter. So that the room is not taken by later callers while
// waiters sleep, a caller that finds others waiting queues up behind them
// (TryGo, which never waits, may still take the room).
func (s *Spawner) admitOrWait(ctx context.Context) (int64, error) {
	if s.roomWaiting.Load() == 0 {
		if n, err := s.tryAdmit(ctx); !saturated(err) {
			return n, err
		}
	}
	if s.isOwnTask(ctx) {
		// Never park a task of this spawner: it may hold the slot it
		// would wait for. It gets room if there is any.
		n, err := s.tryAdmit(ctx)
		if saturated(err) {
			err = ErrWouldDeadlock
		}
		return n, err
	}
	if !s.addWaiter() {
		n, err := s.tryAdmit(ctx)
		if saturated(err) {
			err = errWaitersFull
		}
		return n, err
	}
	s.roomWaiting.Add(1)
	defer func() {
		s.roomWaiting.Add(-1)
		s.waiting.Add(-1)
	}()
	woken := false
	for {
		// We counted ourselves in roomWaiting before this check, and a
		// finishing task counts itself released before it loads roomWaiting
		// (see release). With sequentially consistent atomics at least one
		// side sees the other: either we see the count at lowWater or
		// below and try, or the task that brought it there sees us and
		// sends a token on room. If the count is above lowWater, the
		// admitted tasks will bring it down (the last one to zero) and
		// wake us.
		if woken || s.pending() <= s.lowMark() {
			n, err := s.tryAdmit(ctx)
			if err == nil {
				// A token stands for "room appeared", not for one slot,
				// and tokens coalesce in room's one-slot buffer: pass it
				// on while room remains, so waiters drain in a chain.
				if n < s.capacity() && s.roomWaiting.Load() > 1 {
					s.signalRoom()
				}
				return n, nil
			}
			if !saturated(err) {
				return 0, err
			}
		}
		select {
		case <-s.room:
			woken = true
		case <-ctx.Done():
			return 0, ctxError(ctx)
		case <-s.closed:
			return 0, ErrClosed
		}
	}
}

// waitRate waits for a rate token as one of the MaxWaiters waiters.
func (s *Spawner) waitRate(ctx context.Context) error {
	if !s.addWaiter() {
		return ErrRateLimited
	}
	defer s.waiting.Add(-1)
	r := s.limiter.Reserve()
	if !r.OK() {
		return ErrRateLimited
	}
	d := r.Delay()
	if d == 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		r.Cancel()
		return errRateTooLate
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctxError(ctx)
	case <-s.closed:
		r.Cancel()
		return ErrClosed
	}
}

func (s *Spawner) addWaiter() bool {
	for {
		w := s.waiting.Load()
		if w >= int64(s.cfg.maxWaiters) {
			return false
		}
		if s.waiting.CompareAndSwap(w, w+1) {
			return true
		}
	}
}

// signalRoom wakes a caller waiting for room, and reports whether it sent
// a token (rather than finding one pending, whose taker passes it on).
func (s *Spawner) signalRoom() bool {
	select {
	case s.room <- struct{}{}:
		return true
	default:
		return false
	}
}

// isOwnTask reports whether ctx is (derived from) the context of a task of
// s.
func (s *Spawner) isOwnTask(ctx context.Context) bool {
	owner, _ := ctx.Value(ctxKey{}).(*Spawner)
	return owner == s
}
