//go:build lockorder || race

package lockorder

// hold is the record of an acquisition in progress.
type hold = *heldLock

func (t *TimedMutex) enter(group uint64) hold {
	return acquire(&t.lk, classOf(t, &t.lk, "TimedMutex"), false, group)
}

func (t *TimedMutex) enteredTry() { tried(&t.lk, classOf(t, &t.lk, "TimedMutex"), false) }

func (t *TimedMutex) leave() { release(&t.lk, false) }
