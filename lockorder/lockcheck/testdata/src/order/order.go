// Package order holds lock order inversions and double locking.
package order

import "sync"

type Account struct {
	mu      sync.Mutex
	balance int
}

type Bank struct {
	mu       sync.Mutex
	accounts map[string]*Account
	audit    sync.Mutex
}

// Deposit takes Bank.mu then Account.mu.
func (b *Bank) Deposit(name string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.accounts[name]
	a.mu.Lock() // want `lock order inversion: Account.mu acquired while Bank.mu is held \(locked at line 19\), but Account.mu then Bank.mu at line 31`
	a.balance += n
	a.mu.Unlock()
}

// Close takes Account.mu then Bank.mu, through a helper.
func (a *Account) Close(b *Bank) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b.remove(a) // want `lock order inversion: Bank.mu acquired \(in Bank.remove\) while Account.mu is held`
}

func (b *Bank) remove(a *Account) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range b.accounts {
		if v == a {
			delete(b.accounts, k)
		}
	}
}

// Audit takes Bank.audit then Bank.mu, consistently: no report.
func (b *Bank) Audit() int {
	b.audit.Lock()
	defer b.audit.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.accounts)
}

func (b *Bank) Count() int {
	b.audit.Lock()
	n := len(b.accounts)
	b.audit.Unlock()
	return n
}

// Twice locks one mutex twice in one function.
func (b *Bank) Twice() {
	b.mu.Lock()
	if len(b.accounts) == 0 {
		b.mu.Lock() // want `b.mu is locked again while held \(locked at line 62\)`
	}
	b.mu.Unlock()
}

// Reentrant locks through a method that locks the same instance.
func (b *Bank) Reentrant(a *Account) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.remove(a) // want `b.mu is locked again by the call to Bank.remove while held`
}

// OtherInstance calls remove on another bank: no double lock.
func (b *Bank) OtherInstance(other *Bank, a *Account) {
	b.mu.Lock()
	defer b.mu.Unlock()
	other.remove(a)
}

type Cache struct {
	rw sync.RWMutex
	m  map[string]int
}

func (c *Cache) get(k string) int {
	c.rw.RLock()
	defer c.rw.RUnlock()
	return c.m[k]
}

// Sum read-locks recursively through get.
func (c *Cache) Sum(ks []string) int {
	c.rw.RLock()
	defer c.rw.RUnlock()
	n := 0
	for _, k := range ks {
		n += c.get(k) // want `c.rw is read-locked again by the call to Cache.get while read-locked`
	}
	return n
}

// Early forgets to unlock on the error path.
func (c *Cache) Early(k string) bool {
	c.rw.Lock()
	if _, ok := c.m[k]; ok {
		return false // want `return with c.rw held \(locked at line 107\), but the return at line 113 releases it`
	}
	c.m[k] = 1
	c.rw.Unlock()
	return true
}

var (
	muA sync.Mutex
	muB sync.Mutex
	muC sync.Mutex
)

// A three-lock cycle across three functions.
func AB() {
	muA.Lock()
	muB.Lock() // want `lock order inversion: order.muB acquired while order.muA is held`
	muB.Unlock()
	muA.Unlock()
}

func BC() {
	muB.Lock()
	muC.Lock() // want `lock order inversion: order.muC acquired while order.muB is held`
	muC.Unlock()
	muB.Unlock()
}

func CA() {
	muC.Lock()
	muA.Lock() // want `lock order inversion: order.muA acquired while order.muC is held`
	muA.Unlock()
	muC.Unlock()
}

// An inversion through pointer fields: the role of a mutex is its own
// type's field, whoever points to it.
type conn struct {
	mu       sync.Mutex
	r        *reader
	hijacked bool
}

type reader struct {
	mu   sync.Mutex
	conn *conn
}

func (c *conn) isHijacked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hijacked
}

func (r *reader) abort() {
	r.mu.Lock()
	r.mu.Unlock()
}

func (r *reader) Read() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn.isHijacked() // want `lock order inversion: conn.mu acquired \(in conn.isHijacked\) while reader.mu is held`
}

func (c *conn) Hijack() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.r.abort() // want `lock order inversion: reader.mu acquired \(in reader.abort\) while conn.mu is held`
	c.hijacked = true
}
