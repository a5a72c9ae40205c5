//go:build lockorder || race

package lockorder

func (t *TimedMutex) enter(group uint64) hold {
	return acquire(&t.lk, classOf(t, &t.lk, "TimedMutex"), false, group)
}

func (t *TimedMutex) enteredTry() { tried(&t.lk, classOf(t, &t.lk, "TimedMutex"), false) }

func (t *TimedMutex) leave() { release(&t.lk, false) }
