package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/garrison-go/garrison/changuard"
	"github.com/garrison-go/garrison/examples/internal/work"
	"github.com/garrison-go/garrison/lockorder"
)

var (
	errNoAccount   = errors.New("no such account")
	errFunds       = errors.New("insufficient funds")
	errLockTimeout = errors.New("lock timeout")
)

// Accounts lists the accounts the service starts with.
var Accounts = []string{"alice", "bob", "carol", "dave", "mallory"}

// startBalance is large enough that no siege runs an account dry.
const startBalance = 1 << 40

// Usage is the billing counters that deposits update.
type Usage struct {
	Deposits int64 `json:"deposits"`
	Volume   int64 `json:"volume"`
}

// ledger holds the accounts and the journal.
//
// Every account mutex shares the lock class "ledger.account", the journal
// has "ledger.journal". Classes are what lockorder's checker reasons about:
// it records "held ledger.account while taking ledger.journal" once, for
// all accounts, and reports the first acquisition that would close a cycle
// with both call sites, whether or not the timing ever produced a deadlock.
// Production builds pay nothing for this.
//
// The classes have no rank here (rank 0). With ranks (account 10, journal
// 20) the checker would flag audit's order on first sight, even before any
// transfer ran, but its report would show only audit's call site; without
// them it reports the cycle with both, which is what the siege shows. Add
// ranks once your hierarchy is settled.
type ledger struct {
	accounts    map[string]*account // fixed at start, so read without a lock
	journal     journal
	usage       *changuard.Guarded[Usage]
	lockTimeout time.Duration
	lockPause   time.Duration
	checkPause  time.Duration
}

type account struct {
	mu      lockorder.TimedMutex
	balance int64
}

type journal struct {
	mu      lockorder.TimedMutex
	entries []string
}

func newLedger(cfg Config) (*ledger, error) {
	// Classes are made per ledger, not as package variables, so every
	// ledger (one per test, one per siege run) gets its first report.
	accountClass := lockorder.NewClass("ledger.account", 0)
	journalClass := lockorder.NewClass("ledger.journal", 0)
	l := &ledger{
		accounts:    make(map[string]*account, len(Accounts)),
		usage:       changuard.NewGuarded(Usage{}),
		lockTimeout: cfg.LockTimeout,
		lockPause:   cfg.LockPause,
		checkPause:  cfg.CheckPause,
	}
	for _, id := range Accounts {
		a := &account{balance: startBalance}
		a.mu.SetClass(accountClass)
		l.accounts[id] = a
	}
	l.journal.mu.SetClass(journalClass)
	return l, nil
}

// lock takes m or gives up after the ledger's lock timeout: a request that
// would wait longer is refused with 503, and the service keeps answering
// even if two requests ever wait for each other.
func (l *ledger) lock(m *lockorder.TimedMutex, what string) error {
	if err := m.LockTimeout(l.lockTimeout); err != nil {
		return fmt.Errorf("%w: %s not acquired within %v: %w", errLockTimeout, what, l.lockTimeout, err)
	}
	return nil
}

func (l *ledger) account(id string) (*account, error) {
	a, ok := l.accounts[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", errNoAccount, id)
	}
	return a, nil
}

func (l *ledger) balance(id string) (int64, error) {
	a, err := l.account(id)
	if err != nil {
		return 0, err
	}
	if err := l.lock(&a.mu, "account "+id); err != nil {
		return 0, err
	}
	defer a.mu.Unlock()
	return a.balance, nil
}

// deposit credits an account and bills it. The fraud check runs before the
// counters are touched, and the update itself is one With call: the
// counters cannot be read outside their lock, so no request can load them,
// wait, and store a stale copy over a concurrent update (the naive twin's
// lost-update bug).
func (l *ledger) deposit(ctx context.Context, id string, amount int64) error {
	a, err := l.account(id)
	if err != nil {
		return err
	}
	if err := work.Pause(ctx, l.checkPause); err != nil {
		return err
	}
	if err := l.lock(&a.mu, "account "+id); err != nil {
		return err
	}
	a.balance += amount
	a.mu.Unlock()
	l.usage.With(func(u *Usage) {
		u.Deposits++
		u.Volume += amount
	})
	return nil
}

func (l *ledger) usageNow() Usage {
	var u Usage
	l.usage.Read(func(v Usage) { u = v })
	return u
}

// transfer moves amount between two accounts and journals it: accounts
// first, then the journal.
//
// The two accounts go through lockorder.LockAll, which takes them in one
// global order whatever the order of the arguments: transfer(a, b) and
// transfer(b, a) can never wait for each other. Taking two locks of one
// class any other way is reported by checking builds.
func (l *ledger) transfer(ctx context.Context, fromID, toID string, amount int64) error {
	from, err := l.account(fromID)
	if err != nil {
		return err
	}
	to, err := l.account(toID)
	if err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("%w: cannot transfer to the same account", errNoAccount)
	}
	lockorder.LockAll(&from.mu, &to.mu)
	defer from.mu.Unlock()
	defer to.mu.Unlock()
	if err := work.Pause(ctx, l.lockPause); err != nil {
		return err
	}
	if err := l.lock(&l.journal.mu, "journal"); err != nil {
		return err
	}
	defer l.journal.mu.Unlock()
	if from.balance < amount {
		return errFunds
	}
	from.balance -= amount
	to.balance += amount
	l.journal.append(fmt.Sprintf("%s -> %s: %d", fromID, toID, amount))
	return nil
}

// audit reports an account's balance next to the journal's length.
//
// This is the deliberate bug the siege attacks: it takes the journal, then
// the account, the opposite of transfer. With sync.Mutex, one transfer and
// one audit of the same account that interleave wait for each other
// forever, and then so does every request that needs the journal. Here the
// second lock gives up after LockTimeout, so the audit fails with 503 and
// everyone else proceeds; and a checking build reports the inversion, with
// this call site and transfer's, the first time both have run. The fix is
// to take the account first.
func (l *ledger) audit(ctx context.Context, id string) (balance int64, entries int, err error) {
	a, err := l.account(id)
	if err != nil {
		return 0, 0, err
	}
	if err := l.lock(&l.journal.mu, "journal"); err != nil {
		return 0, 0, err
	}
	defer l.journal.mu.Unlock()
	if err := work.Pause(ctx, l.lockPause); err != nil {
		return 0, 0, err
	}
	if err := l.lock(&a.mu, "account "+id); err != nil {
		return 0, 0, err
	}
	defer a.mu.Unlock()
	return a.balance, len(l.journal.entries), nil
}

func (j *journal) append(e string) {
	if len(j.entries) == 1024 {
		j.entries = j.entries[1:]
	}
	j.entries = append(j.entries, e)
}

func (a *App) getAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	bal, err := a.ledger.balance(id)
	if err != nil {
		httpError(w, errorStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "balance": bal})
}

func (a *App) deposit(w http.ResponseWriter, r *http.Request) {
	amount, err := queryAmount(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	if err := a.ledger.deposit(r.Context(), r.URL.Query().Get("account"), amount); err != nil {
		httpError(w, errorStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (a *App) transfer(w http.ResponseWriter, r *http.Request) {
	amount, err := queryAmount(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	q := r.URL.Query()
	if err := a.ledger.transfer(r.Context(), q.Get("from"), q.Get("to"), amount); err != nil {
		httpError(w, errorStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (a *App) audit(w http.ResponseWriter, r *http.Request) {
	bal, n, err := a.ledger.audit(r.Context(), r.URL.Query().Get("account"))
	if err != nil {
		httpError(w, errorStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"balance": bal, "journal": n})
}
