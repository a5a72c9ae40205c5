package siege

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the one table of the run, then the notes that explain
// it, then the verdict.
func WriteTable(w io.Writer, r *Result) error {
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	fmt.Fprintf(w, "garrison siege (%s) on %s, %d CPUs, GOMAXPROCS=%d, %s %s, %.1f s\n\n",
		mode, r.Machine, r.CPUs, r.GOMAXPROCS, r.GoVersion, r.Platform, r.WallSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// The verdict is the trailing cell of each line, outside the
	// alignment, so that a long "why" under a row does not pad every line.
	fmt.Fprintln(tw, "scenario\tfigure\tnaive\thardened\tverdict")
	fmt.Fprintln(tw, "--------\t------\t-----\t--------\t-------")
	for _, s := range r.Scenarios {
		for i, f := range s.Figures {
			name := ""
			if i == 0 {
				name = s.Name
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, f.Name, value(f, f.Naive), value(f, f.Hardened), mark(f))
			if f.Why != "" {
				fmt.Fprintf(tw, "\t\t\t\t  why: %s\n", f.Why)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, l := range legendFor(r) {
		fmt.Fprintln(w, l)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, s := range r.Scenarios {
		fmt.Fprintf(w, "\n%s: %s\n  attack:  %s\n  defence: %s\n", s.Name, s.Title, s.Threat, s.Defence)
		for _, n := range s.Notes {
			fmt.Fprintln(w, indent(n, "  "))
		}
	}
	fmt.Fprintln(w)
	if r.OK {
		_, err := fmt.Fprintln(w, "PASS: every hardened figure beats its naive twin.")
		return err
	}
	var failed []string
	for _, s := range r.Scenarios {
		for _, f := range s.Figures {
			if !f.OK {
				failed = append(failed, fmt.Sprintf("%s/%s (naive %s, hardened %s: %s)", s.Name, f.Name, value(f, f.Naive), value(f, f.Hardened), f.Verdict))
			}
		}
	}
	_, err := fmt.Fprintf(w, "FAIL: %d hardened figure(s) did not beat the naive twin:\n  %s\n", len(failed), strings.Join(failed, "\n  "))
	return err
}

// legendFor returns the lines of rowLegend that define a word some row of
// r uses: a one-scenario run is not explained with the others' words.
func legendFor(r *Result) []string {
	var names []string
	for _, s := range r.Scenarios {
		for _, f := range s.Figures {
			names = append(names, f.Name)
		}
	}
	all := strings.Join(names, "\n")
	var out []string
	for i := 0; i < len(rowLegend); i++ {
		l := rowLegend[i]
		// A definition and its continuation lines go together.
		j := i + 1
		for j < len(rowLegend) && strings.HasPrefix(rowLegend[j], " ") {
			j++
		}
		term, _, _ := strings.Cut(l, "=")
		used := false
		for _, word := range strings.Split(strings.TrimSpace(term), ",") {
			if word = strings.TrimSpace(word); word != "" && strings.Contains(all, word) {
				used = true
			}
		}
		if used {
			out = append(out, rowLegend[i:j]...)
		}
		i = j - 1
	}
	return out
}

// rowLegend defines the words the table's rows use; a line starting with a
// space continues the definition above it.
var rowLegend = []string{
	"legit      = a legitimate user's requests during the attack: one every 20 ms from 127.0.0.1, each on a new connection,",
	"             unless the scenario's notes say otherwise (keepalive-idle: kept-alive clients at 1 req/s; http2: one HTTP/2 connection;",
	"             chosen-keys: new users logging in from 50 addresses in turn).",
	"legit success = share of legit requests answered 2xx within the user's 1 s patience.",
	"answered   = share of legit requests that got any HTTP answer within 1 s (a 503 counts: the user was told, not left hanging).",
	"legit p50, legit p99 = legit latency; a request with no answer counts as the full 1 s the user waited.",
	"peak       = whole process above its level before the twin started (the attacker's fixed share is the same for both twins).",
	"fds ample  = botnet phase with file descriptors to spare: both twins can hold every connection; the hardened one must still serve ≥ 99 % within 100 ms.",
	"fds capped = botnet phase with the process's RLIMIT_NOFILE lowered to leave 900 descriptors, the position of a server near its limit.",
	"reconnects = connections a kept-alive legit client had to reopen because the server closed the one it meant to reuse.",
	"attributed timeouts = upstream calls that ended at their deadline with an error naming the operation that ran out of time.",
	"goodput    = requests answered with success within their deadline, per second (capacity-drop, priority).",
	"p99 of successes = latency of the requests answered with success (capacity-drop).",
	"critical   = requests marked critical by a trusted caller (priority): success = 2xx within their 500 ms deadline; p99 counts no answer as 500 ms.",
}

func value(f Figure, v float64) string {
	switch f.Unit {
	case "bool":
		if v >= 1 {
			return "yes"
		}
		return "no"
	case "%":
		if math.IsNaN(v) {
			return "n/a"
		}
		return fmt.Sprintf("%.1f %%", v)
	case "ms":
		if v >= 1000 {
			return fmt.Sprintf("%.2f s", v/1000)
		}
		return num(v) + " ms"
	case "":
		return num(v)
	default:
		return num(v) + " " + f.Unit
	}
}

func mark(f Figure) string {
	if !f.OK {
		return "✗ " + f.Verdict
	}
	if f.Verdict != "better" {
		return "✓ " + f.Verdict
	}
	lo, hi := f.Hardened, f.Naive
	if f.Better == "higher" {
		lo, hi = f.Naive, f.Hardened
	}
	if f.Unit != "%" && f.Unit != "bool" && lo > 0 && hi/lo >= 2 {
		return fmt.Sprintf("✓ %s× better", num(hi/lo))
	}
	return "✓ better"
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// WriteJSON writes r for machines. A figure with no samples (NaN, which
// JSON cannot carry) is written as -1.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonSafe(r))
}

// ReadJSON reads what WriteJSON wrote, so that a report can be drawn
// again from a saved run. A figure written as -1 (not measured) reads
// back as NaN.
func ReadJSON(rd io.Reader) (*Result, error) {
	var r Result
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("siege: reading results: %w", err)
	}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		if s.Naive == nil || s.Hardened == nil {
			return nil, fmt.Errorf("siege: reading results: scenario %q lacks a twin", s.Name)
		}
		for j := range s.Figures {
			f := &s.Figures[j]
			if f.Naive == -1 {
				f.Naive = math.NaN()
			}
			if f.Hardened == -1 {
				f.Hardened = math.NaN()
			}
		}
	}
	return &r, nil
}

func jsonSafe(r *Result) *Result {
	c := *r
	c.Scenarios = make([]ScenarioResult, len(r.Scenarios))
	for i, s := range r.Scenarios {
		s.Figures = append([]Figure(nil), s.Figures...)
		for j := range s.Figures {
			f := &s.Figures[j]
			if math.IsNaN(f.Naive) {
				f.Naive = -1
			}
			if math.IsNaN(f.Hardened) {
				f.Hardened = -1
			}
		}
		c.Scenarios[i] = s
	}
	return &c
}
