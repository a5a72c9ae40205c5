package app

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/garrison-go/garrison/examples/internal/work"
	"github.com/garrison-go/garrison/limiter"
	"golang.org/x/time/rate"
)

// maxUserName bounds the user name a login may carry: a longer one is
// refused before it costs a hash or a table slot.
const maxUserName = 256

// newLoginLimit is the password-guessing limit: LoginBurst attempts per
// user name, then one per LoginEvery, in a table of LoginUsers names.
// The table's memory is fixed; when more names are active than it holds,
// limiter.EvictStrict (the default, spelled out here because this is the
// limit an attacker wants reset) folds what an evicted name still owes
// into a sketch, so flooding the table with junk names cannot give a
// victim's name a fresh burst. Its price, fresh names refused while the
// sketch is saturated, needs junk names each driven to their full burst,
// many times the table's size within one LoginEvery×LoginBurst window.
func newLoginLimit(cfg Config) (*limiter.Keyed, error) {
	return limiter.NewKeyed(rate.Every(cfg.LoginEvery), cfg.LoginBurst,
		limiter.WithCapacity(cfg.LoginUsers), limiter.WithEviction(limiter.EvictStrict))
}

// newLoginPerIP is the first line of the login limit: LoginRatePerIP
// logins per second from one address (burst LoginBurstPerIP), whatever
// the user names. It bounds how fast one address can feed the per-user
// table new names, which is what keeps that table from overflowing: the
// per-user table pays only when the names evicted within one refill
// window outnumber its slots many times (see newLoginLimit), and this
// limit makes that take thousands of addresses.
func newLoginPerIP(cfg Config) (*limiter.Keyed, error) {
	return limiter.NewKeyed(cfg.LoginRatePerIP, cfg.LoginBurstPerIP, limiter.WithCapacity(4096))
}

// login checks a password: 200 if right, 401 if wrong, 429 with
// Retry-After once the client's address or the user name has had its
// attempts. The attempt counts whatever its outcome, before the password
// is checked.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	user, password := r.URL.Query().Get("user"), r.URL.Query().Get("password")
	if user == "" || len(user) > maxUserName {
		httpError(w, http.StatusBadRequest, errors.New("user is required, at most 256 bytes"))
		return
	}
	if d := a.loginPerIP.AllowAddr(limiter.ClientAddr(r)); !d.Allowed {
		a.loginRejected.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(max(int(d.RetryAfter.Seconds()+0.999), 1)))
		http.Error(w, "too many logins from this address", http.StatusTooManyRequests)
		return
	}
	if d := a.loginLimit.Allow(user); !d.Allowed {
		a.loginRejected.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(max(int(d.RetryAfter.Seconds()+0.999), 1)))
		http.Error(w, "too many login attempts for this user", http.StatusTooManyRequests)
		return
	}
	if !work.CheckPassword(user, password) {
		http.Error(w, "wrong password", http.StatusUnauthorized)
		return
	}
	_, _ = w.Write([]byte("welcome\n"))
}
