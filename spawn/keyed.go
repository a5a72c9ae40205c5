package spawn

import (
	"sync"
	"sync/atomic"
)

// keyEntry counts the admitted tasks of one key. Jobs carry a pointer to it,
// so ending a task needs no second map lookup.
type keyEntry struct {
	key string
	n   int
}

// keyTable bounds the tasks per key and the number of keys. Its memory is
// O(maxKeys): an entry is deleted as soon as its last task ends.
type keyTable struct {
	mu        sync.Mutex
	m         map[string]*keyEntry
	maxPerKey int
	maxKeys   int
	size      atomic.Int64 // len(m), readable without the lock for Stats
}

func newKeyTable(maxPerKey, maxKeys int) *keyTable {
	return &keyTable{m: make(map[string]*keyEntry), maxPerKey: maxPerKey, maxKeys: maxKeys}
}

// acquire counts one more task for key, or says why it may not have one.
func (t *keyTable) acquire(key string) (*keyEntry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	if e == nil {
		if len(t.m) >= t.maxKeys {
			return nil, errKeyTable
		}
		e = &keyEntry{key: key}
		t.m[key] = e
		t.size.Store(int64(len(t.m)))
	}
	if e.n >= t.maxPerKey {
		return nil, errKeyBusy
	}
	e.n++
	return e, nil
}

// release uncounts one task of e's key, forgetting the key at zero.
func (t *keyTable) release(e *keyEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.n--
	if e.n == 0 {
		delete(t.m, e.key)
		t.size.Store(int64(len(t.m)))
	}
}
