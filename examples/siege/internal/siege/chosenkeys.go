package siege

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"net/netip"

	"github.com/garrison-go/garrison/examples/hardened-server/app"
	"github.com/garrison-go/garrison/examples/internal/work"
	"golang.org/x/time/rate"
)

// keysPlan sizes the chosen-key scenario. Both twins get the same login
// limit: loginBurst attempts per user name, then one per loginEvery, in a
// table of loginUsers names (the siege's size, so that a flood of several
// times the table fits in a demo; the tutorial's default is 65,536 and
// the attack scales with it).
type keysPlan struct {
	loginBurst int
	loginEvery time.Duration
	loginUsers int
	attack     time.Duration // the attack's time bound, per twin
	rounds     int           // its count bound: rounds of guesses and junk
}

func newKeysPlan(quick bool) keysPlan {
	p := keysPlan{loginBurst: 5, loginEvery: 10 * time.Second, loginUsers: 1024, attack: 6 * time.Second, rounds: 40}
	if quick {
		p.attack, p.rounds = 3*time.Second, 20
	}
	return p
}

// allowedGuesses is the most guesses at one name the limit lets through
// within d: the burst, and one more per loginEvery.
func (p keysPlan) allowedGuesses(d time.Duration) int {
	return p.loginBurst + int(math.Ceil(float64(d)/float64(p.loginEvery)))
}

// legitLoginSources is how many addresses the legitimate users log in
// from (127.0.3.1 and up), one after the other: people, not one client.
const legitLoginSources = 50

// loginAttack is what one twin went through in the chosen-key scenario.
type loginAttack struct {
	legit                           []Sample
	guesses, admitted, junk, rounds int
	took                            time.Duration
	stats                           *AttackStats
}

// attackLogins runs the chosen-key attack against the twin at url while
// new users log in, each from the next of legitLoginSources addresses.
func attackLogins(ctx context.Context, e *env, url string, start time.Time) *loginAttack {
	p := e.p.keys
	var cs []*client
	for i := range legitLoginSources {
		src := netip.AddrFrom4([4]byte{127, 0, 3, byte(i + 1)})
		if !canBind(src) {
			src = e.legitSrc
		}
		cs = append(cs, newClient(src, false, 1, e.p.legitTimeout))
	}
	lctx, stopLegit := context.WithCancel(ctx)
	defer stopLegit()
	legitDone := make(chan []Sample, 1)
	go func() {
		legitDone <- legitEach(lctx, cs, start, e.p.legitEvery, "POST", func(i int) string {
			u := fmt.Sprintf("user-%d", i)
			return url + "/login?user=" + u + "&password=" + work.Password(u)
		})
	}()
	atk := e.attackClients(true, e.p.legitTimeout, e.attackSrcs)
	actx, cancel := context.WithTimeout(ctx, p.attack)
	defer cancel()
	la := &loginAttack{stats: &AttackStats{}}
	t0 := time.Now()
	for actx.Err() == nil && la.rounds < p.rounds {
		la.rounds++
		for range p.loginBurst {
			status, err := atk[0].do(context.Background(), "POST", url+"/login?user=victim&password=guess")
			la.guesses++
			if err == nil && status != http.StatusTooManyRequests {
				la.admitted++
			}
		}
		base, n := la.junk, p.loginUsers+p.loginUsers/4
		hammerInto(actx, la.stats, atk, 32, n, func(i int) (string, string) {
			return "POST", fmt.Sprintf("%s/login?user=junk-%d&password=x", url, base+i)
		})
		la.junk += n
	}
	la.took = time.Since(t0)
	stopLegit()
	la.legit = <-legitDone
	for _, c := range cs {
		c.close()
	}
	closeAll(atk)
	return la
}

// runChosenKeys is finding 1 of issue 13's red team, over HTTP: a password
// guesser tries a victim's name in rounds of loginBurst guesses, and
// between rounds logs in, once each, as 1.25 times as many junk names as
// the login table holds, from eight addresses. A table that forgets what
// an evicted name owes gives the victim a fresh burst every round.
//
// The hardened twin runs with the tutorial's login limits (only the
// table's size is the scenario's). Its side also measures, untimed by the
// verdict, a second hardened twin without the per-address login limit:
// the per-user table alone against the whole flood, whose price (new
// names refused once evicted names far outnumber the table) the notes
// report.
func runChosenKeys(ctx context.Context, e *env, name string) (*SideResult, error) {
	p := e.p.keys
	s, err := e.begin(name, "", "POST /login as a new user with the right password, new connection each, from 50 addresses in turn")
	if err != nil {
		return nil, err
	}
	la := attackLogins(ctx, e, s.t.url, s.start)
	s.res.Legit = la.legit
	s.res.Attack = la.stats
	v := s.res.Values
	v["victim guesses"], v["victim guesses admitted"] = float64(la.guesses), float64(la.admitted)
	v["allowed guesses"] = float64(p.allowedGuesses(la.took))
	v["junk logins"], v["rounds"], v["attack seconds"] = float64(la.junk), float64(la.rounds), la.took.Seconds()
	if s.t.side == "hardened" {
		// The variant: the per-user table alone.
		t, err := e.start("hardened", "", targetConfig{hardened: func(c *app.Config) { c.LoginRatePerIP, c.RatePerIP = rate.Inf, rate.Inf }})
		if err != nil {
			_, _ = s.end()
			return nil, err
		}
		vla := attackLogins(ctx, e, t.url, time.Now())
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = t.close(cctx)
		cancel()
		if err != nil {
			_, _ = s.end()
			return nil, err
		}
		vs := summarize(vla.legit, e.p.legitTimeout)
		v["table alone: victim guesses admitted"] = float64(vla.admitted)
		v["table alone: allowed guesses"] = float64(p.allowedGuesses(vla.took))
		v["table alone: legit success"] = pct(vs.OK, vs.N)
		v["table alone: junk logins"] = float64(vla.junk)
		v["table alone: attack seconds"] = vla.took.Seconds()
	}
	return s.end()
}
func chosenKeysFigures(e *env, n, h *SideResult) []Figure {
	ns, hs := summarize(n.Legit, e.p.legitTimeout), summarize(h.Legit, e.p.legitTimeout)
	return []Figure{
		{Name: "victim guesses admitted", Unit: "", Naive: n.Values["victim guesses admitted"], Hardened: h.Values["victim guesses admitted"],
			Better: "lower", Bound: h.Values["allowed guesses"], HasBound: true},
		{Name: "legit success", Unit: "%", Naive: pct(ns.OK, ns.N), Hardened: pct(hs.OK, hs.N), Better: "higher", Ideal: 100, TieOK: true, Bound: 99, HasBound: true},
		{Name: "legit p99", Unit: "ms", Naive: ns.P99, Hardened: hs.P99, Better: "lower", Bound: 100, HasBound: true},
	}
}

func chosenKeysNotes(e *env, n, h *SideResult) []string {
	p := e.p.keys
	notes := []string{
		fmt.Sprintf("both twins limit logins to %d attempts per user name, then one per %v, in a table of %d names (the tutorial's default is 65,536; the attack scales with it)", p.loginBurst, p.loginEvery, p.loginUsers),
		"naive: an LRU cache of x/time/rate limiters, the usual fix for a map that grows: a name pushed out comes back with a fresh burst",
		"hardened, as the tutorial wires it: 10 logins/s per client address first, then the per-user limit in limiter.Keyed with EvictStrict (the default), which folds what an evicted name owes into a fixed sketch",
	}
	for _, r := range []struct {
		name string
		s    *SideResult
	}{{"naive", n}, {"hardened", h}} {
		v := r.s.Values
		notes = append(notes, fmt.Sprintf("%s: %.0f rounds in %.1f s, %.0f guesses at the victim (%.0f admitted, at most %.0f allowed), %.0f junk logins sent", r.name,
			v["rounds"], v["attack seconds"], v["victim guesses"], v["victim guesses admitted"], v["allowed guesses"], v["junk logins"]))
	}
	v := h.Values
	return append(notes, fmt.Sprintf("hardened without the per-address limits (as an attacker with thousands of addresses sees it; not judged): %.0f junk logins in %.1f s, victim admitted %.0f times (at most %.0f allowed), new users' logins %.1f %% successful: "+
		"EvictStrict never resets the victim, and pays with new names once the names evicted within one refill window far outnumber the table, since a new name starts from what the sketch remembers of the names sharing its cells (the price limiter documents)",
		v["table alone: junk logins"], v["table alone: attack seconds"], v["table alone: victim guesses admitted"], v["table alone: allowed guesses"], v["table alone: legit success"]))
}
