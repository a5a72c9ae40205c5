package naive

import (
	"container/list"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/examples/internal/work"
)

// loginLimits is the limit on password guesses the way it is usually
// written once someone notices that a map of rate.Limiter grows without
// bound: a least-recently-used cache of them, capped at a number of user
// names. A name pushed out of the cache comes back with a fresh burst, so
// an attacker who logs in as enough other names between two rounds of
// guesses at a victim resets the victim's limit every time.
type loginLimits struct {
	mu    sync.Mutex
	every time.Duration
	burst int
	max   int
	order *list.List // front: most recently used; values are *loginEntry
	byKey map[string]*list.Element
}

type loginEntry struct {
	user string
	lim  *rate.Limiter
}

func newLoginLimits(cfg Config) *loginLimits {
	return &loginLimits{every: cfg.LoginEvery, burst: cfg.LoginBurst, max: cfg.LoginUsers,
		order: list.New(), byKey: make(map[string]*list.Element)}
}

func (l *loginLimits) allow(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.byKey[user]; ok {
		l.order.MoveToFront(e)
		return e.Value.(*loginEntry).lim.Allow()
	}
	if l.order.Len() >= l.max {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.byKey, oldest.Value.(*loginEntry).user)
	}
	lim := rate.NewLimiter(rate.Every(l.every), l.burst)
	l.byKey[user] = l.order.PushFront(&loginEntry{user: user, lim: lim})
	return lim.Allow()
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	user, password := r.URL.Query().Get("user"), r.URL.Query().Get("password")
	if !s.logins.allow(user) {
		http.Error(w, "too many login attempts for this user", http.StatusTooManyRequests)
		return
	}
	if !work.CheckPassword(user, password) {
		http.Error(w, "wrong password", http.StatusUnauthorized)
		return
	}
	_, _ = w.Write([]byte("welcome\n"))
}
