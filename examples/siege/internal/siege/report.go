package siege

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WriteHTML writes a self-contained page (inline CSS and SVG, no scripts,
// no external assets) with the table and, per scenario, the latency of
// every legitimate request over time, naive against hardened, and the
// process's goroutines over time.
func WriteHTML(w io.Writer, r *Result) error {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>garrison siege</title><style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.ok{color:#17803d}.bad{color:#b3261e;font-weight:bold}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}svg{background:#fff;border:1px solid #ddd}
.legend span{display:inline-block;margin-right:1.5em}.sw{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
</style></head><body>`)
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "<h1>garrison siege</h1><p>%s run on %s (%d CPUs, GOMAXPROCS=%d), %s %s, started %s, %.1f s.</p>",
		mode, esc(r.Machine), r.CPUs, r.GOMAXPROCS, esc(r.GoVersion), esc(r.Platform), r.Started.Format("2006-01-02 15:04:05 MST"), r.WallSeconds)
	if r.OK {
		b.WriteString(`<p class="ok"><b>PASS</b>: every hardened figure beats its naive twin.</p>`)
	} else {
		b.WriteString(`<p class="bad">FAIL: some hardened figures did not beat the naive twin (marked below).</p>`)
	}
	b.WriteString("<table><tr><th>scenario</th><th>figure</th><th>naive</th><th>hardened</th><th>verdict</th></tr>")
	for _, s := range r.Scenarios {
		for i, f := range s.Figures {
			name := ""
			if i == 0 {
				name = fmt.Sprintf(`<a href="#%s">%s</a>`, esc(s.Name), esc(s.Name))
			}
			cls := "ok"
			if !f.OK {
				cls = "bad"
			}
			fmt.Fprintf(&b, `<tr><td>%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="%s">%s</td></tr>`,
				name, esc(f.Name), esc(value(f, f.Naive)), esc(value(f, f.Hardened)), cls, esc(mark(f)))
		}
	}
	b.WriteString("</table>")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "<p>Note: %s</p>", esc(n))
	}
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, `<h2 id="%s">%s</h2><p>%s. Legitimate request: <code>%s</code>.</p>`, esc(s.Name), esc(s.Title), esc(s.Threat), esc(s.Naive.LegitWhat))
		b.WriteString(`<p class="legend"><span><i class="sw" style="background:#d62728"></i>naive</span><span><i class="sw" style="background:#2ca02c"></i>hardened</span><span>× = no answer within the timeout</span></p>`)
		latencyChart(&b, s)
		goroutineChart(&b, s)
		if len(s.Notes) > 0 {
			fmt.Fprintf(&b, "<pre>%s</pre>", esc(strings.Join(s.Notes, "\n")))
		}
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string { return html.EscapeString(s) }

const (
	chartW, chartH = 900, 260
	padL, padR     = 60, 15
	padT, padB     = 15, 35
)

// latencyChart plots each legitimate request at (start time, latency) on a
// log scale, so 1 ms and 1 s are both readable.
func latencyChart(b *strings.Builder, s ScenarioResult) {
	var maxT, maxL float64 = 1, 10
	minL := 0.1
	for _, side := range []*SideResult{s.Naive, s.Hardened} {
		for _, p := range side.Legit {
			maxT = max(maxT, p.AtMS)
			maxL = max(maxL, p.LatencyMS)
		}
	}
	x := func(t float64) float64 { return padL + (chartW-padL-padR)*t/maxT }
	y := func(l float64) float64 {
		l = min(max(l, minL), maxL)
		return padT + (chartH-padT-padB)*(1-(math.Log10(l)-math.Log10(minL))/(math.Log10(maxL)-math.Log10(minL)))
	}
	fmt.Fprintf(b, `<svg viewBox="0 0 %d %d" width="100%%" role="img" aria-label="legit latency over time">`, chartW, chartH)
	for k := -1; math.Pow(10, float64(k)) <= maxL*1.0001; k++ {
		d := math.Pow(10, float64(k))
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`,
			padL, chartW-padR, y(d), y(d), padL-5, y(d)+4, esc(fmtMS(d)))
	}
	axes(b, maxT, "legit latency (log scale) against time since the attack started")
	for _, side := range []struct {
		r     *SideResult
		color string
	}{{s.Naive, "#d62728"}, {s.Hardened, "#2ca02c"}} {
		for _, p := range side.r.Legit {
			if p.Answered {
				fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="2.2" fill="%s" fill-opacity=".75"/>`, x(p.AtMS), y(p.LatencyMS), side.color)
			} else {
				cx, cy := x(p.AtMS), y(p.LatencyMS)
				fmt.Fprintf(b, `<path d="M%.1f %.1fl5 5m0 -5l-5 5" stroke="%s" stroke-width="1.5"/>`, cx-2.5, cy-2.5, side.color)
			}
		}
	}
	b.WriteString("</svg>")
}

// goroutineChart plots the process's goroutine count over time per twin.
func goroutineChart(b *strings.Builder, s ScenarioResult) {
	var maxT, maxG float64 = 1, 10
	for _, side := range []*SideResult{s.Naive, s.Hardened} {
		for _, p := range side.Series {
			maxT = max(maxT, p.AtMS)
			maxG = max(maxG, float64(p.Goroutines))
		}
	}
	x := func(t float64) float64 { return padL + (chartW-padL-padR)*t/maxT }
	y := func(g float64) float64 { return padT + (chartH-padT-padB)*(1-g/maxG) }
	fmt.Fprintf(b, `<svg viewBox="0 0 %d %d" width="100%%" role="img" aria-label="goroutines over time">`, chartW, chartH)
	for _, g := range []float64{0, maxG / 2, maxG} {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%.0f</text>`,
			padL, chartW-padR, y(g), y(g), padL-5, y(g)+4, g)
	}
	axes(b, maxT, "goroutines in the process against time since the attack started")
	for _, side := range []struct {
		r     *SideResult
		color string
	}{{s.Naive, "#d62728"}, {s.Hardened, "#2ca02c"}} {
		var pts []string
		for _, p := range side.r.Series {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.AtMS), y(float64(p.Goroutines))))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, side.color, strings.Join(pts, " "))
	}
	b.WriteString("</svg>")
}

func axes(b *strings.Builder, maxT float64, title string) {
	step := 500.0
	if maxT > 6000 {
		step = 1000
	}
	for t := 0.0; t <= maxT; t += step {
		px := padL + (chartW-padL-padR)*t/maxT
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ccc"/><text x="%.1f" y="%d" font-size="11" text-anchor="middle">%.1fs</text>`,
			px, px, chartH-padB, chartH-padB+4, px, chartH-padB+16, t/1000)
	}
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#888"/><text x="%d" y="%d" font-size="12" text-anchor="middle">%s</text>`,
		padL, chartW-padR, chartH-padB, chartH-padB, (chartW+padL)/2, chartH-4, esc(title))
}

func fmtMS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gs", v/1000)
	}
	return fmt.Sprintf("%gms", v)
}
