package siege

import (
	"bytes"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syntheticResult is a two-scenario run: conn-flood-like, where every
// naive request went unanswered after a fast reset, and race-like, with
// its deposit counts.
func syntheticResult() *Result {
	var naive, hardened []Sample
	for i := range 30 {
		at := float64(i * 20)
		naive = append(naive, Sample{AtMS: at, LatencyMS: 0.2, Answered: false})
		hardened = append(hardened, Sample{AtMS: at, LatencyMS: 1 + float64(i%3), OK: i%10 != 0, Answered: true, Status: 200})
	}
	flood := ScenarioResult{Name: "conn-flood", Title: "Connection flood", Threat: "t", Defence: "d",
		Naive:    &SideResult{Legit: naive, PatienceMS: 1000, Series: []Point{{AtMS: 0, Goroutines: 10, HeapMiB: 1}, {AtMS: 500, Goroutines: 900, HeapMiB: 4}}},
		Hardened: &SideResult{Legit: hardened, PatienceMS: 1000, Series: []Point{{AtMS: 0, Goroutines: 10, HeapMiB: 1}, {AtMS: 500, Goroutines: 700, HeapMiB: 3}}},
		Figures: []Figure{
			{Name: "legit success", Unit: "%", Naive: 0, Hardened: 90, Better: "higher"},
			{Name: "legit p99", Unit: "ms", Naive: 1000, Hardened: 3, Better: "lower"},
		}}
	race := ScenarioResult{Name: "race", Title: "Lost updates", Threat: "t", Defence: "d",
		Naive:    &SideResult{PatienceMS: 1000, Deposits: []DepositPoint{{AtMS: 1, Acknowledged: 0}, {AtMS: 5, Acknowledged: 100, Recorded: 40}}},
		Hardened: &SideResult{PatienceMS: 1000, Deposits: []DepositPoint{{AtMS: 1, Acknowledged: 0}, {AtMS: 5, Acknowledged: 100, Recorded: 100}}},
		Figures: []Figure{
			{Name: "lost updates", Naive: 60, Hardened: 0, Better: "lower", Ideal: 0, Required: true},
		}}
	r := &Result{Started: time.Unix(0, 0), Scenarios: []ScenarioResult{flood, race}}
	for i := range r.Scenarios {
		for j := range r.Scenarios[i].Figures {
			r.Scenarios[i].Figures[j].judge()
		}
	}
	return r
}

var (
	bandRE = regexp.MustCompile(`<rect class="band" x="[0-9.]+" y="([0-9.]+)" width="[0-9.]+" height="([0-9.]+)"`)
	noneRE = regexp.MustCompile(`class="mk none" data-side="(\w+)" data-n="(\d+)" d="M([0-9.]+) ([0-9.]+)`)
	markRE = regexp.MustCompile(`class="mk (ok|fail)" data-side="(\w+)" data-n="(\d+)"`)
)

// TestReportDrawsNoAnswerAtThePatience is the conn-flood chart's bug: a
// request reset after 0.2 ms must not be drawn below a 1 ms answer.
func TestReportDrawsNoAnswerAtThePatience(t *testing.T) {
	var page bytes.Buffer
	require.NoError(t, WriteHTML(&page, syntheticResult()))
	html := page.String()
	band := bandRE.FindStringSubmatch(html)
	require.NotNil(t, band)
	top, _ := strconv.ParseFloat(band[1], 64)
	h, _ := strconv.ParseFloat(band[2], 64)
	n := 0
	for _, m := range noneRE.FindAllStringSubmatch(html, -1) {
		assert.Equal(t, "naive", m[1])
		k, _ := strconv.Atoi(m[2])
		n += k
		y, _ := strconv.ParseFloat(m[4], 64)
		assert.True(t, y+3 >= top && y+3 <= top+h, "a no-answer mark at y=%v, the band is %v..%v", y+3, top, top+h)
	}
	assert.Equal(t, 30, n, "every unanswered request drawn once")
	kinds := map[string]int{}
	for _, m := range markRE.FindAllStringSubmatch(html, -1) {
		k, _ := strconv.Atoi(m[3])
		kinds[m[2]+"/"+m[1]] += k
	}
	assert.Equal(t, map[string]int{"hardened/ok": 27, "hardened/fail": 3}, kinds)
	assert.Contains(t, html, `data-final="60"`, "the lost-updates line ends at the table's figure")
	assert.NotContains(t, html, "<script")
	assert.NotContains(t, html, "NaN")
	for _, term := range []string{"<dt>legit</dt>", "<dt>success</dt>", "<dt>answered</dt>", "<dt>no answer</dt>"} {
		assert.Contains(t, html, term)
	}
}

// goodProbe is what a browser measures on syntheticResult's page when
// everything agrees.
func goodProbe(r *Result) *Probe {
	p := &Probe{Viewport: 1000, ScrollWidth: 1000, Height: 3000, Terms: []string{"legit", "success", "answered", "no answer"}}
	for _, s := range r.Scenarios {
		p.Headings = append(p.Headings, struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		}{s.Name, s.Name + ": " + s.Title})
		p.Heap = append(p.Heap, struct {
			Scenario string `json:"scenario"`
			Lines    int    `json:"lines"`
		}{s.Name, 2})
		for _, f := range s.Figures {
			p.Rows = append(p.Rows, struct {
				Scenario string   `json:"scenario"`
				Figure   string   `json:"figure"`
				Cells    []string `json:"cells"`
			}{s.Name, f.Name, []string{"", f.Name, value(f, f.Naive), value(f, f.Hardened), mark(f)}})
			scale := max(math.Abs(f.Naive), math.Abs(f.Hardened))
			for _, sd := range []struct {
				name string
				v    float64
			}{{"naive", f.Naive}, {"hardened", f.Hardened}} {
				p.Bars = append(p.Bars, struct {
					Scenario string  `json:"scenario"`
					Side     string  `json:"side"`
					Figure   string  `json:"figure"`
					Width    float64 `json:"width"`
				}{s.Name, sd.name, f.Name, max(400*sd.v/scale, 0.8)})
			}
		}
	}
	p.Charts = append(p.Charts, struct {
		Scenario      string         `json:"scenario"`
		Counts        map[string]int `json:"counts"`
		Misplaced     []string       `json:"misplaced"`
		BandAbovePlot bool           `json:"band_above_plot"`
	}{"conn-flood", map[string]int{"naive/none": 30, "hardened/ok": 27, "hardened/fail": 3}, nil, true})
	for _, side := range []struct {
		name  string
		final float64
	}{{"naive", 60}, {"hardened", 0}} {
		p.Lost = append(p.Lost, struct {
			Scenario string  `json:"scenario"`
			Side     string  `json:"side"`
			Final    float64 `json:"final"`
			Drawn    bool    `json:"drawn"`
		}{"race", side.name, side.final, true})
	}
	return p
}

// TestCheckRenderedFindsEachDisagreement feeds the report check a probe
// that agrees with the results, then one fault at a time: each must be
// reported, so the CI check cannot pass a page that misleads.
func TestCheckRenderedFindsEachDisagreement(t *testing.T) {
	r := syntheticResult()
	assert.Empty(t, CheckRendered(r, goodProbe(r)))

	for name, tc := range map[string]struct {
		spoil func(p *Probe)
		want  string
	}{
		"too wide":        {func(p *Probe) { p.ScrollWidth = 1180 }, "1180 px wide"},
		"overflow":        {func(p *Probe) { p.Overflow = []string{"pre content 2000px wide in 900px"} }, "overflow: pre"},
		"undefined word":  {func(p *Probe) { p.Terms = p.Terms[1:] }, `does not define "legit"`},
		"heading":         {func(p *Probe) { p.Headings[0].Text = "Connection flood" }, "section heading"},
		"no heap chart":   {func(p *Probe) { p.Heap = p.Heap[1:] }, "conn-flood: no heap chart"},
		"cell":            {func(p *Probe) { p.Rows[1].Cells[3] = "2.00 ms" }, "conn-flood/legit p99: the table says"},
		"bar ratio":       {func(p *Probe) { p.Bars[3].Width *= 3 }, "conn-flood/legit p99: bars"},
		"missing mark":    {func(p *Probe) { p.Charts[0].Counts["naive/none"] = 29 }, "29 naive none marks drawn"},
		"misplaced mark":  {func(p *Probe) { p.Charts[0].Misplaced = []string{"naive/none at y=250"} }, "wrong place"},
		"band below":      {func(p *Probe) { p.Charts[0].BandAbovePlot = false }, "band is not above"},
		"lost line":       {func(p *Probe) { p.Lost[0].Final = 59 }, "lost-updates chart ends at 59"},
		"no latency plot": {func(p *Probe) { p.Charts = nil }, "conn-flood: no latency chart"},
	} {
		t.Run(name, func(t *testing.T) {
			p := goodProbe(r)
			tc.spoil(p)
			bad := CheckRendered(r, p)
			require.NotEmpty(t, bad)
			assert.Contains(t, strings.Join(bad, "\n"), tc.want)
		})
	}
}

func TestExtractProbe(t *testing.T) {
	for _, dom := range []string{
		`<html><body><pre id="probe" hidden="">{"viewport":1000,"terms":["a &amp; b"]}</pre></body></html>`,
		`<html><body><pre id="probe">{"viewport":1000,"terms":["a &amp; b"]}</pre></body></html>`,
	} {
		p, err := ExtractProbe(dom)
		require.NoError(t, err)
		assert.Equal(t, []string{"a & b"}, p.Terms)
		assert.Equal(t, 1000.0, p.Viewport)
	}
	_, err := ExtractProbe("<html></html>")
	assert.Error(t, err)
}
