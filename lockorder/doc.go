// Package lockorder provides mutexes that catch deadlocks before they
// happen. Mutex, RWMutex, TimedMutex, WaitGroup, Cond and Once replace
// their sync counterparts with a one-line diff; in production builds they
// cost what the sync types cost, and in checking builds every acquisition
// and every wait is checked against a graph of the orders seen so far.
//
// The threat: a sequence of requests drives goroutines into taking locks in
// opposite orders (A then B here, B then A there) and the service hangs
// until it is restarted. The hang needs unlucky timing; the bug does not.
// lockorder reports the inversion the first time both orders have been
// seen, even if they ran an hour apart and never deadlocked:
//
//	var accounts = lockorder.NewClass("account", 2)
//
//	type Account struct {
//		mu      lockorder.Mutex // was: sync.Mutex
//		balance int
//	}
//
//	func NewAccount() *Account { a := new(Account); a.mu.SetClass(accounts); return a }
//
//	func Transfer(from, to *Account, n int) {
//		lockorder.LockAll(&from.mu, &to.mu) // a global order: no AB/BA deadlock
//		defer lockorder.UnlockAll(&from.mu, &to.mu)
//		from.balance, to.balance = from.balance-n, to.balance+n
//	}
//
// # Builds
//
// Checking is compiled in by the build tag lockorder and turns on by itself
// under -race, so `go test -race` of a service that uses lockorder checks
// its lock order. Enabled reports which build this is. Without either, the
// methods of Mutex and RWMutex are one-line calls to the sync methods and
// are inlined (CI asserts this with -gcflags=-m); the only extra cost is the
// class pointer SetClass stores, which LockAll needs to order locks by rank
// in every build.
//
// # What is checked
//
// The checker keeps a graph of lock classes with an edge A -> B for "B was
// acquired while A was held". Mutexes that play the same role should share
// a Class (NewClass); a mutex without one is its own class, named after its
// first acquisition site. Before an acquisition blocks, the checker
// reports (see SetHandler and OrderError):
//
//   - ErrInversion: the new edge closes a cycle of any length (A -> B -> A,
//     A -> B -> C -> A), with the stack where each edge was first seen.
//   - ErrRank: a ranked class is acquired while a ranked lock of equal or
//     higher rank is held, even the first time the pair is seen.
//   - ErrNesting: a second lock of one class is taken outside LockAll.
//   - ErrRecursive: a goroutine acquires a lock it holds; for RLock this is
//     a real deadlock as soon as a writer waits.
//   - ErrBlocking: a goroutine waits (WaitGroup.Wait, Cond.Wait, a
//     changuard Chan or Owner call, a spawn Wait, or a wait annotated with
//     Blocking) while holding a lock that the goroutine which would end the
//     wait acquires first (see below).
//   - ErrExitedHolder: a contended acquisition of a lock whose holder has
//     exited without unlocking it (a missing Unlock on an early return).
//   - ErrCopied: a mutex is used after being copied.
//
// # Locks held while blocking
//
// A lock-order graph cannot see a goroutine that holds a lock while it
// waits on a channel or a WaitGroup that another goroutine can only
// complete after taking that lock. The checker treats each event (a
// WaitGroup reaching zero, a Cond signal, a value or room on a Chan, an
// annotated object) as a node of the graph: waiting for E while holding L
// adds L -> E; unblocking E (Done, Signal, a send, the end of a task)
// after acquiring L adds E -> L, for the locks the unblocker holds, those
// it acquired since its own last wait, and all it acquires during work
// that will end the wait (WaitGroup.Go, WillUnblock, spawn tasks, Owner
// calls). A cycle L -> E -> L is reported before the wait (or the
// acquisition) blocks: in a run that did not hang, as soon as both halves
// have been seen, and in the run that would hang when the unblocker's work
// is known. The "acquired since its last wait" window is a heuristic: a
// goroutine that synchronizes through an unchecked channel between taking
// L and unblocking E is still counted as needing L; annotate that channel
// with Blocking to end the window. Other packages report their waits
// through an internal hook that costs nothing in production builds.
//
// # Precision
//
// An RLock blocks only behind a writer. When every writer of a lock seen so
// far held a gate lock that another goroutine of the cycle holds, no
// writer can be in the way, the cycle cannot close, and it is not reported
// (the false reports of nested read transactions). Mutexes without a Class
// get a class per instance, but reports are deduplicated by the kind and
// first site of such classes, so one bug across 1,000 instances of a
// struct is reported once. One field first locked at different places in
// different instances counts as one name once an instance first locked at
// one place is locked at the other, and a cycle closed from any of its
// edges is one bug. Converted to lockorder, bbolt's own tests report its
// four latent nested-transaction deadlocks once each, and go-cache,
// golang-lru and groupcache report nothing (.ci/checks/lockorder-projects.sh
// converts and runs them; lockcheck's cmd/lockconvert does the
// conversion).
//
// # Tests and leaks
//
// VerifyNone, deferred at the start of a test, fails the test when a lock
// is still held at its end: by the test, by a goroutine that has exited,
// or by a goroutine still blocked after a grace period. When Go's
// goroutine leak profile is available (GOEXPERIMENT=goroutineleakprofile),
// VerifyNone and the watchdog use it as a second net: goroutines the
// runtime proves blocked forever are reported with the locks they hold and
// wait for. The checker's records never keep a mutex reachable, so they do
// not hide a leak from that profile.
//
// Read and write acquisitions are ordered alike, because Go's RWMutex
// blocks new readers behind a waiting writer. TryLock and TryRLock record
// the lock as held but add no edge: they cannot block. Each violation is
// reported once per process. The default handler panics with the
// *OrderError; nothing calls os.Exit.
//
// Known edges are checked without a global lock: each class publishes an
// immutable edge set through an atomic pointer, so the common case is one
// load and one map lookup for the most recently acquired lock (the locks
// below it are already ordered before it in the graph; a mutex without a
// Class does not vouch for them, as its paths leave the graph with it, so
// the lookups go on past it). Only a new edge takes the graph lock,
// captures a stack and searches for a cycle. The cost does not grow with
// the number of locks other goroutines hold. Per-instance classes hold no
// reference to their mutex; a cleanup (runtime.AddCleanup) removes a class
// from the graph when its mutex is garbage-collected.
//
// SetWatchdog starts one goroutine that reports locks held or waited for
// longer than a threshold, with the holder's acquisition stack. LockAll
// takes a set of locks in one global order; LockAllContext does so with a
// bound.
//
// # Goroutine identity
//
// The held-lock stacks are per goroutine, and Go exposes no goroutine id;
// linking into the runtime with go:linkname is refused since Go 1.23.
// Checking builds on
// amd64 and arm64 read the runtime's goroutine pointer with a two-line
// assembly function and find the id's offset in it at start-up by
// matching the id that runtime.Stack prints on several fresh goroutines,
// then verify the offset on more. If the search is ambiguous, or on any
// other architecture, the checker parses runtime.Stack instead: about a
// microsecond slower per operation, never wrong. A wrong id would mean
// false reports (go-deadlock's assembly reader broke that way when the
// runtime's layout changed); a verified offset cannot silently drift,
// because it is re-derived from runtime.Stack on every start. This needs
// no dependency, which is why github.com/petermattis/goid is not used.
//
// # Costs
//
// Production builds: Mutex and RWMutex as fast as the sync types;
// TimedMutex one compare-and-swap uncontended. Checking builds: roughly
// 4-5x sync.Mutex per Lock/Unlock, and a nested A -> B pair costs under a
// tenth of what go-deadlock charges for it, independent of how many locks
// other goroutines hold (bench/lockorder).
package lockorder
