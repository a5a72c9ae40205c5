package siege

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WriteHTML writes a self-contained page (inline CSS and SVG, no scripts,
// no external assets) that a reader can check against the table at a
// glance:
//
//   - the words the table uses are defined at the top, with the chart
//     marks;
//   - the table is the terminal's, with the same names and the same "why"
//     under a hardened figure short of its ideal;
//   - each scenario's section is headed by its table name, says the attack
//     and the defence in two lines, and draws every figure of its rows as
//     a pair of bars;
//   - the legitimate requests are drawn over time, a success as a dot, an
//     answer that is not a success (a refusal, an error) as a triangle,
//     and a request with no answer as a cross in a band of its own at the
//     user's patience, which is where the percentiles count it;
//   - the race scenario draws its lost updates as the attack went, and
//     every scenario the process's goroutines and live heap over time.
//
// Every chart element a check may want to find carries a class and
// data- attributes (see the report check in .ci/checks/report.sh).
func WriteHTML(w io.Writer, r *Result) error {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>garrison siege</title><style>
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:960px;padding:1em 16px;color:#222}
h1{margin:.2em 0}h2{margin:2.2em 0 .3em;padding-top:.6em;border-top:2px solid #ddd}
table{border-collapse:collapse;width:100%;margin:1em 0}td,th{padding:.25em .6em;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top;overflow-wrap:anywhere}
td.s{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}tr.why td{border-bottom:1px solid #e4e4e4;color:#555;font-size:13px;padding-top:0}
tr.fig td{border-bottom:none}.ok{color:#17803d}.bad{color:#b3261e;font-weight:bold}
svg{display:block;width:100%;height:auto;background:#fff;border:1px solid #ddd}
figure{margin:1em 0;min-width:0}figcaption{font-size:13px;color:#555;overflow-wrap:anywhere}
.pair{display:flex;flex-wrap:wrap;gap:16px}.pair>figure{flex:1 1 400px;margin:0}
dl{margin:.5em 0}dt{font-weight:600;margin-top:.4em}dd{margin:0 0 0 1.5em;overflow-wrap:anywhere}
ul.notes{font-size:13px;color:#333;padding-left:1.3em}ul.notes li{overflow-wrap:anywhere;margin:.2em 0}
code{overflow-wrap:anywhere}.mark{display:inline-block;width:1.2em;text-align:center;font-weight:bold}
.naive{color:#d62728}.hardened{color:#2a9d3f}
</style></head><body>`)
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "<h1>garrison siege</h1><p>A %s run on %s (%d CPUs, GOMAXPROCS=%d), %s %s, started %s, %.1f s. Each scenario attacks a naive Go service and the same service built with garrison (the hardened twin), one after the other, in one process on loopback.</p>",
		mode, esc(r.Machine), r.CPUs, r.GOMAXPROCS, esc(r.GoVersion), esc(r.Platform), r.Started.Format("2006-01-02 15:04:05 MST"), r.WallSeconds)
	if r.OK {
		b.WriteString(`<p class="ok" id="verdict"><b>PASS</b>: every hardened figure beats its naive twin or reaches its bound.</p>`)
	} else {
		b.WriteString(`<p class="bad" id="verdict">FAIL: some hardened figures did not beat the naive twin (marked ✗ below).</p>`)
	}
	terms(&b, r)
	summaryTable(&b, r)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "<p>Note: %s</p>", esc(n))
	}
	for _, s := range r.Scenarios {
		section(&b, s)
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string { return html.EscapeString(s) }

// baseTerms are defined on every page, whatever the run's rows: the
// charts use them.
var baseTerms = [][2]string{
	{"legit", "the requests of a legitimate user during the attack, measured on both twins alike; what they are is stated under each scenario's heading."},
	{"success", "a legit request answered with a 2xx status within the user's patience (1 s unless the scenario says otherwise)."},
	{"answered", "a legit request that got any HTTP answer within the patience: a 503 counts, since the user was told at once instead of being left waiting. Answered is not success."},
	{"no answer", "no HTTP answer within the patience (a timeout, a reset, a refused connection): the percentiles count it at the full patience, the time its user waited, and the charts draw it there."},
}

// chartMarks explains the marks of the latency charts.
const chartMarks = `<dt>chart marks</dt><dd><svg viewBox="0 0 14 14" style="display:inline;width:1em;border:none;vertical-align:-2px"><circle cx="7" cy="7" r="4" fill="#555"/></svg> success, ` +
	`<svg viewBox="0 0 14 14" style="display:inline;width:1em;border:none;vertical-align:-2px"><path d="M7 2.5l4.5 8h-9z" fill="none" stroke="#555" stroke-width="1.6"/></svg> answered without success (a refusal such as 429/503, or an error status), ` +
	`<svg viewBox="0 0 14 14" style="display:inline;width:1em;border:none;vertical-align:-2px"><path d="M3 3l8 8m0-8l-8 8" stroke="#555" stroke-width="1.8"/></svg> no answer, in the grey band at the top, at the patience; ` +
	`<span class="naive">■ naive</span>, <span class="hardened">■ hardened</span>.</dd>`

// terms writes the definitions: the base terms, then the table legend's
// lines for the words the run's rows use.
func terms(b *strings.Builder, r *Result) {
	b.WriteString(`<h2 id="terms">How to read this page</h2><dl>`)
	for _, t := range baseTerms {
		fmt.Fprintf(b, "<dt>%s</dt><dd>%s</dd>", esc(t[0]), esc(t[1]))
	}
	legend := legendFor(r)
	for i := 0; i < len(legend); i++ {
		term, def, ok := strings.Cut(legend[i], "=")
		if !ok {
			continue
		}
		for i+1 < len(legend) && strings.HasPrefix(legend[i+1], " ") {
			i++
			def += " " + strings.TrimSpace(legend[i])
		}
		if t := strings.TrimSpace(term); t != "legit" && t != "answered" {
			fmt.Fprintf(b, "<dt>%s</dt><dd>%s</dd>", esc(t), esc(strings.TrimSpace(def)))
		}
	}
	b.WriteString(chartMarks)
	b.WriteString(`<dt>verdict</dt><dd>✓ when the hardened twin beats the naive one (or both reach the ideal), or reaches the bound the scenario sets whatever the naive twin did; ✗ otherwise. A "why" under a row says why a hardened figure is short of its ideal.</dd></dl>`)
}

func summaryTable(b *strings.Builder, r *Result) {
	b.WriteString(`<table id="summary"><thead><tr><th>scenario</th><th>figure</th><th>naive</th><th>hardened</th><th>verdict</th></tr></thead><tbody>`)
	for _, s := range r.Scenarios {
		for i, f := range s.Figures {
			name := ""
			if i == 0 {
				name = fmt.Sprintf(`<a href="#%s">%s</a>`, esc(s.Name), esc(s.Name))
			}
			figRow(b, s.Name, name, f)
		}
	}
	b.WriteString("</tbody></table>")
}

// figRow writes one figure's row, and its why under it.
func figRow(b *strings.Builder, scenario, first string, f Figure) {
	cls, rowCls := "ok", "fig"
	if !f.OK {
		cls = "bad"
	}
	if f.Why == "" {
		rowCls = ""
	}
	fmt.Fprintf(b, `<tr class="%s" data-scenario="%s" data-figure="%s"><td class="s">%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="%s">%s</td></tr>`,
		rowCls, esc(scenario), esc(f.Name), first, esc(f.Name), esc(value(f, f.Naive)), esc(value(f, f.Hardened)), cls, esc(mark(f)))
	if f.Why != "" {
		fmt.Fprintf(b, `<tr class="why"><td></td><td colspan="4">why: %s</td></tr>`, esc(f.Why))
	}
}

func section(b *strings.Builder, s ScenarioResult) {
	fmt.Fprintf(b, `<section id="%s"><h2>%s: %s</h2>`, esc(s.Name), esc(s.Name), esc(s.Title))
	fmt.Fprintf(b, `<p><b>Attack:</b> %s.<br><b>Defence:</b> %s.</p>`, esc(s.Threat), esc(s.Defence))
	if s.Naive != nil && s.Hardened != nil {
		fmt.Fprintf(b, `<p>Legit request: <code>%s</code>; patience %s.</p>`, esc(s.Naive.LegitWhat), esc(fmtMS(s.Hardened.PatienceMS)))
	}
	figureBars(b, s)
	if s.Naive != nil && s.Hardened != nil {
		if len(s.Naive.Legit)+len(s.Hardened.Legit) > 4 {
			latencyChart(b, s)
		}
		if len(s.Naive.Deposits)+len(s.Hardened.Deposits) > 0 {
			depositsChart(b, s)
		}
		b.WriteString(`<div class="pair">`)
		seriesChart(b, s, "goroutines", "goroutines in the process", func(p Point) float64 { return float64(p.Goroutines) }, func(r *SideResult) float64 { return float64(r.PeakGoroutines) }, "%.0f")
		seriesChart(b, s, "heap", "live heap (MiB)", func(p Point) float64 { return p.HeapMiB }, func(r *SideResult) float64 { return r.PeakHeapMiB }, "%.1f")
		b.WriteString(`</div>`)
	}
	if len(s.Notes) > 0 {
		b.WriteString(`<ul class="notes">`)
		for _, n := range s.Notes {
			fmt.Fprintf(b, "<li>%s</li>", esc(n))
		}
		b.WriteString(`</ul>`)
	}
	b.WriteString(`</section>`)
}

const (
	colNaive    = "#d62728"
	colHardened = "#2a9d3f"
)

type sideCol struct {
	name  string
	r     *SideResult
	color string
}

func sides(s ScenarioResult) []sideCol {
	return []sideCol{{"naive", s.Naive, colNaive}, {"hardened", s.Hardened, colHardened}}
}

// figureBars draws every figure of the scenario's rows as a pair of bars,
// each figure on its own scale, with the table's values and verdict.
func figureBars(b *strings.Builder, s ScenarioResult) {
	if len(s.Figures) == 0 {
		return
	}
	const w, rowH, top = 940, 40, 8
	const labelW, barX, barW = 300, 310, 380
	h := top + rowH*len(s.Figures) + 6
	fmt.Fprintf(b, `<figure><svg class="bars" data-scenario="%s" viewBox="0 0 %d %d" role="img" aria-label="%s: every figure, naive against hardened">`, esc(s.Name), w, h, esc(s.Name))
	for i, f := range s.Figures {
		y0 := float64(top + i*rowH)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="13" text-anchor="end">%s</text>`, labelW, y0+19, esc(trimLabel(f.Name, 40)))
		scale := max(math.Abs(f.Naive), math.Abs(f.Hardened))
		if f.Unit == "%" {
			scale = 100
		}
		if f.Unit == "bool" {
			scale = 1
		}
		for k, sd := range []struct {
			name  string
			v     float64
			color string
		}{{"naive", f.Naive, colNaive}, {"hardened", f.Hardened, colHardened}} {
			y := y0 + 4 + float64(k)*15
			bw := 0.0
			if scale > 0 && !math.IsNaN(sd.v) && sd.v > 0 {
				bw = barW * min(sd.v/scale, 1)
			}
			fmt.Fprintf(b, `<rect class="bar" data-side="%s" data-figure="%s" x="%d" y="%.1f" width="%.1f" height="12" fill="%s"/>`,
				sd.name, esc(f.Name), barX, y, max(bw, 0.8), sd.color)
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="12">%s</text>`, float64(barX)+max(bw, 0.8)+5, y+10.5, esc(value(f, sd.v)))
		}
		cls := colHardened
		if !f.OK {
			cls = colNaive
		}
		fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="13" fill="%s" text-anchor="end">%s</text>`, w-8, y0+19, cls, esc(trimLabel(verdictShort(f), 22)))
	}
	b.WriteString(`</svg><figcaption>Each figure of the table on its own scale (percentages on 0–100 %): <span class="naive">naive</span> above, <span class="hardened">hardened</span> below.</figcaption></figure>`)
}

func verdictShort(f Figure) string {
	m := mark(f)
	if len([]rune(m)) > 22 {
		if f.OK {
			return "✓"
		}
		return "✗ (see table)"
	}
	return m
}

func trimLabel(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Chart geometry, in SVG user units; the SVG scales to the page's width.
const (
	chartW         = 940
	padL, padR     = 64, 16
	padT, padB     = 10, 40
	bandH          = 26
	latencyPlotH   = 230
	halfW, halfH   = 460, 220
	markerR        = 2.4
	minLatencyAxis = 0.1
)

// latencyChart plots each legitimate request at (start time, latency) on a
// log scale up to the patience. A request without an answer is a cross in
// the band above the plot, at the patience: the percentiles count it
// there, and a reader must not see a reset as a fast answer.
func latencyChart(b *strings.Builder, s ScenarioResult) {
	patience := max(s.Naive.PatienceMS, s.Hardened.PatienceMS, 1)
	maxT := 1.0
	minL := minLatencyAxis
	for _, sd := range sides(s) {
		for _, p := range sd.r.Legit {
			maxT = max(maxT, p.AtMS)
			if p.Answered && p.LatencyMS > 0 {
				minL = min(minL, math.Pow(10, math.Floor(math.Log10(p.LatencyMS))))
			}
		}
		for _, ph := range sd.r.Phases {
			maxT = max(maxT, ph.ToMS)
		}
	}
	minL = max(minL, 0.001)
	bandTop := float64(padT)
	plotTop := bandTop + bandH + 6
	plotBot := plotTop + latencyPlotH
	h := int(plotBot) + padB
	x := func(t float64) float64 { return padL + (chartW-padL-padR)*t/maxT }
	y := func(l float64) float64 {
		l = min(max(l, minL), patience)
		return plotTop + (plotBot-plotTop)*(1-(math.Log10(l)-math.Log10(minL))/(math.Log10(patience)-math.Log10(minL)))
	}
	fmt.Fprintf(b, `<figure><svg class="latency" data-scenario="%s" data-patience-ms="%g" viewBox="0 0 %d %d" role="img" aria-label="%s: legit latency over time">`,
		esc(s.Name), patience, chartW, h, esc(s.Name))
	phases(b, s, x, bandTop, plotBot)
	fmt.Fprintf(b, `<rect class="band" x="%d" y="%.1f" width="%d" height="%d" fill="#ececec"/>`, padL, bandTop, chartW-padL-padR, bandH)
	fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end">no answer</text><text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#666">(= %s)</text>`,
		padL-5, bandTop+11, padL-5, bandTop+23, esc(fmtMS(patience)))
	fmt.Fprintf(b, `<rect class="plot" x="%d" y="%.1f" width="%d" height="%.1f" fill="none"/>`, padL, plotTop, chartW-padL-padR, plotBot-plotTop)
	for k := int(math.Round(math.Log10(minL))); math.Pow10(k) <= patience*1.0001; k++ {
		d := math.Pow10(k)
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`,
			padL, chartW-padR, y(d), y(d), padL-5, y(d)+4, esc(fmtMS(d)))
	}
	if top := y(patience); math.Abs(math.Log10(patience)-math.Round(math.Log10(patience))) > 1e-9 {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`,
			padL, chartW-padR, top, top, padL-5, top+4, esc(fmtMS(patience)))
	}
	timeAxis(b, maxT, x, int(plotBot), chartW, "legit latency (log scale) against time since the twin started")
	// Identical marks at the same pixel are drawn once, with their count:
	// a 5,000-request scenario stays a page, and a check can still count.
	type key struct {
		kind   string
		px, py int
	}
	for i, sd := range sides(s) {
		counts := map[key]int{}
		var order []key
		for _, p := range sd.r.Legit {
			var k key
			switch {
			case !p.Answered:
				// Naive in the band's upper half, hardened in its lower.
				k = key{"none", int(math.Round(x(p.AtMS))), int(bandTop + bandH*(0.3+0.4*float64(i)))}
			case p.OK:
				k = key{"ok", int(math.Round(x(p.AtMS))), int(math.Round(y(p.LatencyMS)))}
			default:
				k = key{"fail", int(math.Round(x(p.AtMS))), int(math.Round(y(p.LatencyMS)))}
			}
			if counts[k] == 0 {
				order = append(order, k)
			}
			counts[k]++
		}
		for _, k := range order {
			cx, cy := float64(k.px), float64(k.py)
			attrs := fmt.Sprintf(`class="mk %s" data-side="%s" data-n="%d"`, k.kind, sd.name, counts[k])
			switch k.kind {
			case "ok":
				fmt.Fprintf(b, `<circle %s cx="%.0f" cy="%.0f" r="%g" fill="%s" fill-opacity=".7"/>`, attrs, cx, cy, markerR, sd.color)
			case "fail":
				fmt.Fprintf(b, `<path %s d="M%.0f %.1fl3.5 6h-7z" fill="none" stroke="%s" stroke-width="1.3"/>`, attrs, cx, cy-3.5, sd.color)
			default:
				fmt.Fprintf(b, `<path %s d="M%.1f %.1fl6 6m0-6l-6 6" stroke="%s" stroke-width="1.5"/>`, attrs, cx-3, cy-3, sd.color)
			}
		}
	}
	b.WriteString(`</svg><figcaption>`)
	for i, sd := range sides(s) {
		ok, fail, none := 0, 0, 0
		for _, p := range sd.r.Legit {
			switch {
			case !p.Answered:
				none++
			case p.OK:
				ok++
			default:
				fail++
			}
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(b, `<span class="%s" data-side="%s" data-ok="%d" data-fail="%d" data-none="%d">%s</span>: %d legit requests, %d success, %d answered without success, %d no answer`,
			sd.name, sd.name, ok, fail, none, sd.name, ok+fail+none, ok, fail, none)
	}
	b.WriteString(`.</figcaption></figure>`)
}

// phases shades and names the parts of an attack that changes as it runs.
func phases(b *strings.Builder, s ScenarioResult, x func(float64) float64, top, bot float64) {
	ph := s.Hardened.Phases
	if len(ph) == 0 {
		ph = s.Naive.Phases
	}
	for i, p := range ph {
		fill := "#f7f7fb"
		if i%2 == 1 {
			fill = "#eef1f8"
		}
		fmt.Fprintf(b, `<rect class="phase" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/><text x="%.1f" y="%.1f" font-size="11" fill="#557" text-anchor="middle">%s</text>`,
			x(p.FromMS), top+bandH+6, max(x(p.ToMS)-x(p.FromMS), 0), bot-top-bandH-6, fill, (x(p.FromMS)+x(p.ToMS))/2, bot-6, esc(p.Name))
	}
}

// timeAxis draws the time ticks under a plot ending at y = bottom.
func timeAxis(b *strings.Builder, maxT float64, x func(float64) float64, bottom, width int, title string) {
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 60000} {
		step = s
		if maxT/s <= 10 {
			break
		}
	}
	for t := 0.0; t <= maxT+1e-9; t += step {
		px := x(t)
		label := fmt.Sprintf("%gs", t/1000)
		if step < 100 {
			label = fmt.Sprintf("%gms", t)
		}
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#aaa"/><text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>`,
			px, px, bottom, bottom+4, px, bottom+16, label)
	}
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#888"/><text x="%d" y="%d" font-size="12" text-anchor="middle">%s</text>`,
		padL, width-padR, bottom, bottom, (width+padL)/2, bottom+33, esc(title))
}

// depositsChart plots the updates lost so far (deposits acknowledged to
// clients minus deposits recorded) as the attack went.
func depositsChart(b *strings.Builder, s ScenarioResult) {
	t0, t1, maxLost := math.Inf(1), math.Inf(-1), 1.0
	for _, sd := range sides(s) {
		for _, p := range sd.r.Deposits {
			t0, t1 = min(t0, p.AtMS), max(t1, p.AtMS)
			maxLost = max(maxLost, float64(p.Acknowledged-p.Recorded))
		}
	}
	if t1 <= t0 {
		t1 = t0 + 1
	}
	const h = 260
	plotTop, plotBot := float64(padT+6), float64(h-padB)
	x := func(t float64) float64 { return padL + (chartW-padL-padR)*(t-t0)/(t1-t0) }
	y := func(v float64) float64 { return plotTop + (plotBot-plotTop)*(1-max(v, 0)/maxLost) }
	fmt.Fprintf(b, `<figure><svg class="lost" data-scenario="%s" viewBox="0 0 %d %d" role="img" aria-label="%s: lost updates during the attack">`, esc(s.Name), chartW, h, esc(s.Name))
	for _, v := range []float64{0, maxLost / 2, maxLost} {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%.0f</text>`,
			padL, chartW-padR, y(v), y(v), padL-5, y(v)+4, v)
	}
	timeAxis(b, t1-t0, func(t float64) float64 { return x(t0 + t) }, int(plotBot), chartW, "updates lost so far (acknowledged minus recorded) against time since the attack started")
	for i, sd := range sides(s) {
		var pts []string
		last := 0.0
		for _, p := range sd.r.Deposits {
			last = float64(p.Acknowledged - p.Recorded)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.AtMS), y(last)))
		}
		if len(pts) == 0 {
			continue
		}
		fmt.Fprintf(b, `<polyline class="lostline" data-side="%s" data-final="%.0f" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, sd.name, last, sd.color, strings.Join(pts, " "))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="12" fill="%s" text-anchor="end">%s: %.0f lost</text>`, chartW-padR-4, plotTop+14+16*float64(i), sd.color, sd.name, last)
	}
	b.WriteString(`</svg><figcaption>Lost updates as the attack went: a deposit acknowledged with 200 but missing from the billing counters is lost (the line may dip while a recorded deposit's answer is still on its way). The last point of each line is the table's "lost updates".</figcaption></figure>`)
}

// seriesChart plots one of the sampler's readings over time per twin, in
// half the page's width.
func seriesChart(b *strings.Builder, s ScenarioResult, class, what string, get func(Point) float64, peak func(*SideResult) float64, format string) {
	var maxT, maxV float64 = 1, 1
	for _, sd := range sides(s) {
		for _, p := range sd.r.Series {
			maxT = max(maxT, p.AtMS)
			maxV = max(maxV, get(p))
		}
	}
	maxV *= 1.05
	plotTop, plotBot := float64(padT+4), float64(halfH-padB)
	x := func(t float64) float64 { return padL + (halfW-padL-padR)*t/maxT }
	y := func(v float64) float64 { return plotTop + (plotBot-plotTop)*(1-v/maxV) }
	fmt.Fprintf(b, `<figure><svg class="%s" data-scenario="%s" viewBox="0 0 %d %d" role="img" aria-label="%s: %s over time">`, class, esc(s.Name), halfW, halfH, esc(s.Name), esc(what))
	for _, v := range []float64{0, maxV / 2, maxV / 1.05} {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`,
			padL, halfW-padR, y(v), y(v), padL-5, y(v)+4, fmt.Sprintf(format, v))
	}
	timeAxis(b, maxT, x, int(plotBot), halfW, what+" against time")
	for _, sd := range sides(s) {
		var pts []string
		for _, p := range sd.r.Series {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.AtMS), y(get(p))))
		}
		fmt.Fprintf(b, `<polyline data-side="%s" fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, sd.name, sd.color, strings.Join(pts, " "))
	}
	fmt.Fprintf(b, `</svg><figcaption>%s: peak above the level before the twin started, <span class="naive">naive</span> `+format+`, <span class="hardened">hardened</span> `+format+`.</figcaption></figure>`,
		esc(what), peak(s.Naive), peak(s.Hardened))
}

func fmtMS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gs", v/1000)
	}
	return fmt.Sprintf("%gms", v)
}
