package main

import (
	"strings"
	"testing"
)

// Two rounds in which the ratio against the peer is 2.0 and 3.0: the
// table must show the spread, not one pooled median of each side.
const rounds = `round: 1
BenchmarkTiny/raw-2   	 1000	       100 ns/op	       0 B/op	       0 allocs/op
BenchmarkTiny/garrison-2   	 1000	       200 ns/op	       0 B/op	       0 allocs/op
round: 2
BenchmarkTiny/raw-2   	 1000	       300 ns/op	       0 B/op	       0 allocs/op
BenchmarkTiny/garrison-2   	 1000	       900 ns/op	       0 B/op	       0 allocs/op
round: 3
BenchmarkTiny/raw-2   	 1000	       100 ns/op	       0 B/op	       0 allocs/op
BenchmarkTiny/garrison-2   	 1000	       250 ns/op	       0 B/op	       0 allocs/op
`

func TestRatiosAreTakenWithinRounds(t *testing.T) {
	var out strings.Builder
	if err := run(strings.NewReader(rounds), &out, []string{"raw"}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	// Pooled medians would give 250/100 = 2.50 with no spread; per round the
	// ratios are 2.0, 3.0 and 2.5.
	if !strings.Contains(got, "| garrison | 250 | 0 | 0 | 2.50 (2.00–3.00) |") {
		t.Fatalf("garrison row lacks the per-round spread:\n%s", got)
	}
	if !strings.Contains(got, "| raw | 100 | 0 | 0 | 1.00 (1.00–1.00) |") {
		t.Fatalf("raw row wrong:\n%s", got)
	}
}

func TestWithoutRoundLinesEachRepetitionIsARound(t *testing.T) {
	in := strings.ReplaceAll(rounds, "round: 1\n", "")
	in = strings.ReplaceAll(in, "round: 2\n", "")
	in = strings.ReplaceAll(in, "round: 3\n", "")
	var out strings.Builder
	if err := run(strings.NewReader(in), &out, []string{"raw"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "2.50 (2.00–3.00)") {
		t.Fatalf("repetitions not paired in order:\n%s", out.String())
	}
}

func TestBadRoundLine(t *testing.T) {
	if err := run(strings.NewReader("round: x\n"), &strings.Builder{}, nil); err == nil {
		t.Fatal("a malformed round line was accepted")
	}
}

// A paired benchmark's own ratio metric shows its spread over the rounds.
func TestPairedRatioMetricShowsSpread(t *testing.T) {
	in := `round: 1
BenchmarkPaired/x-2   	 10	 100 ns/op	 1.50 x-singleflight	 200 coalescer-ns/call
round: 2
BenchmarkPaired/x-2   	 10	 100 ns/op	 2.50 x-singleflight	 300 coalescer-ns/call
round: 3
BenchmarkPaired/x-2   	 10	 100 ns/op	 1.75 x-singleflight	 250 coalescer-ns/call
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| 250 | 1.75 (1.50–2.50) |") {
		t.Fatalf("the paired ratio lacks its spread, or a plain metric got one:\n%s", out.String())
	}
}
