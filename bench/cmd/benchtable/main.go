// Command benchtable reads `go test -bench` output on stdin and prints a
// markdown table per benchmark group: the median of every metric over the
// runs, and the ratio of ns/op against named peers.
//
// A line "round: N" (written by bench/compare) starts round N. A ratio is
// computed within each round, between measurements taken minutes rather
// than a whole -count block apart, and printed as min / median / max over
// the rounds: on a noisy machine one ratio is not evidence, its spread is.
// Input without round lines counts each repetition of a benchmark as its
// own round.
//
// A benchmark's name is split at its last '/': what comes before is the
// group, the last element is the implementation. Ratios are taken against
// the implementations named with -vs (comma separated, in that order),
// matched by equality or by the prefix "NAME" before a '-' GOMAXPROCS
// suffix. Groups with none of them get no ratio column.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type row struct {
	group, impl string
	metrics     map[string][]float64
	// nsByRound is ns/op per round, for ratios taken within a round.
	nsByRound map[int]float64
}

func main() {
	vs := flag.String("vs", "", "comma-separated implementations to compute ns/op ratios against")
	flag.Parse()
	var peers []string
	if *vs != "" {
		peers = strings.Split(*vs, ",")
	}
	if err := run(os.Stdin, os.Stdout, peers); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, peers []string) error {
	var (
		order  []string
		rows   = map[string]*row{}
		groups []string
		seen   = map[string]bool{}
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	round, marked := 0, false
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "round: "); ok {
			r, err := strconv.Atoi(strings.TrimSpace(n))
			if err != nil {
				return fmt.Errorf("bad round line %q", sc.Text())
			}
			round, marked = r, true
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := stripProcs(strings.TrimPrefix(f[0], "Benchmark"))
		group, impl := name, name
		if i := strings.LastIndex(name, "/"); i >= 0 {
			group, impl = name[:i], name[i+1:]
		}
		r, ok := rows[name]
		if !ok {
			r = &row{group: group, impl: impl, metrics: map[string][]float64{}, nsByRound: map[int]float64{}}
			rows[name] = r
			order = append(order, name)
			if !seen[group] {
				seen[group] = true
				groups = append(groups, group)
			}
		}
		// f[1] is the iteration count; then value/unit pairs.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			r.metrics[f[i+1]] = append(r.metrics[f[i+1]], v)
			if f[i+1] == "ns/op" {
				key := round
				if !marked {
					key = len(r.metrics["ns/op"])
				}
				r.nsByRound[key] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark lines on stdin")
	}
	for _, g := range groups {
		var members []*row
		for _, n := range order {
			if rows[n].group == g {
				members = append(members, rows[n])
			}
		}
		printGroup(out, g, members, peers)
	}
	return nil
}

// stripProcs removes the -N GOMAXPROCS suffix go test appends.
func stripProcs(name string) string {
	i := strings.LastIndex(name, "-")
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printGroup(out io.Writer, group string, members []*row, peers []string) {
	units := []string{"ns/op"}
	extra := map[string]bool{}
	for _, r := range members {
		for u := range r.metrics {
			if u != "ns/op" && u != "B/op" && u != "allocs/op" && !extra[u] {
				extra[u] = true
			}
		}
	}
	var extras []string
	for u := range extra {
		extras = append(extras, u)
	}
	sort.Strings(extras)
	units = append(units, "B/op", "allocs/op")
	units = append(units, extras...)

	var refs []*row
	var refNames []string
	for _, p := range peers {
		for _, r := range members {
			if r.impl == p || strings.HasPrefix(r.impl, p+"=") || strings.TrimPrefix(r.impl, "impl=") == p {
				refs = append(refs, r)
				refNames = append(refNames, p)
				break
			}
		}
	}

	fmt.Fprintf(out, "\n### %s\n\n| impl |", group)
	for _, u := range units {
		fmt.Fprintf(out, " %s |", u)
	}
	for _, n := range refNames {
		fmt.Fprintf(out, " × %s: median (min–max) |", n)
	}
	fmt.Fprint(out, "\n|---|")
	for range len(units) + len(refNames) {
		fmt.Fprint(out, "---:|")
	}
	fmt.Fprintln(out)
	for _, r := range members {
		fmt.Fprintf(out, "| %s |", r.impl)
		for _, u := range units {
			xs, ok := r.metrics[u]
			if !ok {
				fmt.Fprint(out, " – |")
				continue
			}
			if comparison(u) && len(xs) > 1 {
				// A paired benchmark's own ratio or difference: its
				// spread over the rounds is the evidence, as for ours.
				lo, hi := slices.Min(xs), slices.Max(xs)
				fmt.Fprintf(out, " %s (%s–%s) |", format(median(xs)), format(lo), format(hi))
				continue
			}
			fmt.Fprintf(out, " %s |", format(median(xs)))
		}
		for _, ref := range refs {
			fmt.Fprintf(out, " %s |", spread(ratios(r, ref)))
		}
		fmt.Fprintln(out)
	}
}

// comparison reports whether a custom metric compares two implementations
// measured in one benchmark (a paired benchmark's "x-singleflight",
// "×raw", "adaptive-extra-ns/task").
func comparison(unit string) bool {
	return strings.HasPrefix(unit, "x-") || strings.HasPrefix(unit, "×") || strings.Contains(unit, "extra")
}

// ratios returns r's ns/op over ref's for every round that measured both.
func ratios(r, ref *row) []float64 {
	var out []float64
	for round, ns := range r.nsByRound {
		if base, ok := ref.nsByRound[round]; ok && base > 0 {
			out = append(out, ns/base)
		}
	}
	return out
}

// spread prints ratios as "median (min–max)", or "–" without any.
func spread(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	if len(xs) == 1 {
		return fmt.Sprintf("%.2f (1 round)", xs[0])
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(xs), lo, hi)
}

func format(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
