// Package naive is the hardened service's twin written the way Go services
// are usually written before their first incident: a plain listener and an
// http.Server with default settings, a bare go statement per background
// job, sync.Mutex taken in whatever order each handler needs, a shared
// struct updated by read-modify-write, and an upstream call without a
// deadline. It serves the same HTTP API and calls the same business logic
// (package work) as examples/hardened-server/app, so the siege measures the
// wiring and nothing else.
//
// Nothing here is a strawman: every line is a pattern found in production
// code. The only additions are Close and the teardown of the deadlock
// (see restart), which let the siege and its tests stop the twin without
// leaving goroutines behind, something a real process in that state only
// gets from a restart.
package naive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/garrison-go/garrison/examples/internal/work"
)

// Config is the business logic's knobs, identical to the hardened app's.
type Config struct {
	// Upstream is the base URL of the payment provider called by /charge.
	Upstream string
	// Job is the background work started by POST /jobs.
	Job work.Job
	// LockPause is the work done between a handler's two lock acquisitions.
	LockPause time.Duration
	// CheckPause is the fraud check made while a deposit is being recorded.
	CheckPause time.Duration
	// LoginBurst, LoginEvery and LoginUsers are POST /login's limit per
	// user name, as the hardened app's (defaults 5, 12 s, 65,536 names).
	LoginBurst int
	LoginEvery time.Duration
	LoginUsers int
	// H2C also serves cleartext HTTP/2, with Go's default HTTP/2 settings,
	// as the hardened twin does.
	H2C bool
}

// Accounts lists the accounts both twins start with.
var Accounts = []string{"alice", "bob", "carol", "dave", "mallory"}

// Server is the naive twin.
type Server struct {
	cfg      Config
	srv      *http.Server
	upstream *http.Client
	accounts map[string]*account
	journal  journal
	usage    usageStore
	restart  restart
	// jobCtx ends when the server closes, so the background jobs that the
	// bare go statements started do not outlive the siege.
	jobCtx    context.Context
	stopJobs  context.CancelFunc
	handlers  sync.WaitGroup
	inflight  atomic.Int64
	jobs      sync.WaitGroup
	acceptErr atomic.Int64
	logins    *loginLimits
}

type account struct {
	mu      mutex
	balance int64
}

type journal struct {
	mu      mutex
	entries []string
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Usage is the per-service billing counter that deposits update.
type Usage struct {
	Deposits int64 `json:"deposits"`
	Volume   int64 `json:"volume"`
}

// usageStore guards every single access with a mutex, so the race detector
// is satisfied and a reviewer sees a lock. The bug is one level up: the
// handler loads, modifies and stores, and two handlers that interleave
// between the load and the store lose an update. The race detector cannot
// see it because there is no data race, only a race condition.
type usageStore struct {
	mu sync.Mutex
	v  Usage
}

func (u *usageStore) load() Usage {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.v
}

func (u *usageStore) store(v Usage) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.v = v
}

// New returns a naive server for cfg. It starts nothing until Serve.
func New(cfg Config) *Server {
	s := &Server{
		cfg: cfg,
		// A zero http.Client and Transport: no timeout anywhere, which is
		// what http.DefaultClient gives. A private Transport only so Close
		// can drop its idle connections.
		upstream: &http.Client{Transport: &http.Transport{}},
		accounts: make(map[string]*account, len(Accounts)),
	}
	if cfg.LoginBurst <= 0 {
		cfg.LoginBurst = 5
	}
	if cfg.LoginEvery <= 0 {
		cfg.LoginEvery = 12 * time.Second
	}
	if cfg.LoginUsers <= 0 {
		cfg.LoginUsers = 1 << 16
	}
	s.cfg = cfg
	s.logins = newLoginLimits(cfg)
	for _, id := range Accounts {
		s.accounts[id] = &account{mu: mutex{r: &s.restart}, balance: 1000}
	}
	s.journal.mu.r = &s.restart
	s.jobCtx, s.stopJobs = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /accounts/{id}", s.getAccount)
	mux.HandleFunc("POST /deposit", s.deposit)
	mux.HandleFunc("POST /transfer", s.transfer)
	mux.HandleFunc("GET /audit", s.audit)
	mux.HandleFunc("POST /jobs", s.startJob)
	mux.HandleFunc("POST /charge", s.charge)
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err == nil {
			fmt.Fprintf(w, "%d\n", n)
		}
	})
	mux.HandleFunc("GET /download", func(w http.ResponseWriter, r *http.Request) {
		size, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
		if err != nil {
			size = 1 << 20
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.CopyN(w, zeroReader{}, size)
	})
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /usage", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.usage.load()) })
	// http.Server defaults: no timeouts at all, 1 MiB of headers. ErrorLog
	// only counts accept errors instead of printing them, so the siege's
	// table is not buried under "too many open files; retrying".
	s.srv = &http.Server{
		Handler:  s.track(mux),
		ErrorLog: log.New(errCounter{&s.acceptErr}, "", 0),
	}
	if cfg.H2C {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.srv.Protocols = &p
	}
	return s
}

// Serve serves HTTP on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServerErrors reports how many errors http.Server logged (mostly failed
// accepts).
func (s *Server) ServerErrors() int64 { return s.acceptErr.Load() }

// Usage returns the billing counters.
func (s *Server) Usage() Usage { return s.usage.load() }

// Close stops the twin: it closes the listener and every connection, then
// releases handlers stuck in the deadlock (see restart), cancels background
// jobs, and waits until all of them have returned or ctx ends.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Close()
	s.stopJobs()
	unjammed := make(chan struct{})
	go func() {
		defer close(unjammed)
		s.restart.unjam(ctx, &s.inflight, s.lockables())
	}()
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		s.jobs.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("naive: close: handlers still running: %w", context.Cause(ctx))
	}
	<-unjammed
	s.upstream.CloseIdleConnections()
	return err
}

func (s *Server) lockables() []*mutex {
	ms := []*mutex{&s.journal.mu}
	for _, a := range s.accounts {
		ms = append(ms, &a.mu)
	}
	return ms
}

func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handlers.Add(1)
		s.inflight.Add(1)
		defer func() {
			s.inflight.Add(-1)
			s.handlers.Done()
		}()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	a, ok := s.accounts[r.PathValue("id")]
	if !ok {
		http.Error(w, "no such account", http.StatusNotFound)
		return
	}
	a.mu.Lock()
	bal := a.balance
	a.mu.Unlock()
	writeJSON(w, map[string]any{"id": r.PathValue("id"), "balance": bal})
}

func (s *Server) deposit(w http.ResponseWriter, r *http.Request) {
	a, amount, ok := s.accountAndAmount(w, r, "account")
	if !ok {
		return
	}
	a.mu.Lock()
	a.balance += amount
	a.mu.Unlock()

	u := s.usage.load()
	// The fraud check runs between the load and the store: every deposit
	// that completes meanwhile is overwritten by the store below.
	_ = work.Pause(context.Background(), s.cfg.CheckPause)
	u.Deposits++
	u.Volume += amount
	s.usage.store(u)
	writeJSON(w, map[string]any{"ok": true})
}

// transfer takes the two accounts, then the journal.
func (s *Server) transfer(w http.ResponseWriter, r *http.Request) {
	from, amount, ok := s.accountAndAmount(w, r, "from")
	if !ok {
		return
	}
	to, ok := s.accounts[r.URL.Query().Get("to")]
	if !ok || to == from {
		http.Error(w, "bad destination account", http.StatusBadRequest)
		return
	}
	from.mu.Lock()
	defer from.mu.Unlock()
	to.mu.Lock()
	defer to.mu.Unlock()
	_ = work.Pause(context.Background(), s.cfg.LockPause)
	s.journal.mu.Lock()
	defer s.journal.mu.Unlock()
	if from.balance < amount {
		http.Error(w, "insufficient funds", http.StatusConflict)
		return
	}
	from.balance -= amount
	to.balance += amount
	s.journal.append(fmt.Sprintf("transfer %d", amount))
	writeJSON(w, map[string]any{"ok": true})
}

// audit takes the journal, then an account: the opposite order to transfer.
// A transfer and an audit of the same account that interleave wait for each
// other forever, and every later request that needs the journal joins them.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	a, ok := s.accounts[r.URL.Query().Get("account")]
	if !ok {
		http.Error(w, "no such account", http.StatusNotFound)
		return
	}
	s.journal.mu.Lock()
	defer s.journal.mu.Unlock()
	_ = work.Pause(context.Background(), s.cfg.LockPause)
	a.mu.Lock()
	defer a.mu.Unlock()
	writeJSON(w, map[string]any{"balance": a.balance, "journal": len(s.journal.entries)})
}

func (s *Server) startJob(w http.ResponseWriter, _ *http.Request) {
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		_ = s.cfg.Job.Run(s.jobCtx)
	}()
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) charge(w http.ResponseWriter, _ *http.Request) {
	// No context, no deadline: if the provider hangs, so does this handler,
	// with its goroutine, its connection and the upstream connection.
	resp, err := s.upstream.Get(s.cfg.Upstream + "/charge")
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	writeJSON(w, map[string]any{"ok": resp.StatusCode == http.StatusOK})
}

func (s *Server) accountAndAmount(w http.ResponseWriter, r *http.Request, param string) (*account, int64, bool) {
	a, ok := s.accounts[r.URL.Query().Get(param)]
	if !ok {
		http.Error(w, "no such account", http.StatusNotFound)
		return nil, 0, false
	}
	amount, err := strconv.ParseInt(r.URL.Query().Get("amount"), 10, 64)
	if err != nil || amount <= 0 {
		http.Error(w, "bad amount", http.StatusBadRequest)
		return nil, 0, false
	}
	return a, amount, true
}

func (j *journal) append(e string) {
	if len(j.entries) == 1024 {
		j.entries = j.entries[1:]
	}
	j.entries = append(j.entries, e)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

type errCounter struct{ n *atomic.Int64 }

func (c errCounter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return len(p), nil
}
