package siege

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ProbeScript, appended to a report and run by a browser after layout,
// measures the page as a reader sees it: what overflows the window, what
// the table's cells say, where each chart mark was drawn, and how long
// each bar is. It writes its findings as JSON into a <pre id="probe">
// that a headless browser's DOM dump carries out (see CheckRendered and
// .ci/checks/report.sh). The report itself has no script.
const ProbeScript = `<script>
(function () {
  const vw = window.innerWidth;
  const out = {viewport: vw, scroll_width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight, overflow: [], rows: [], headings: [],
    terms: [], charts: [], lost: [], heap: [], bars: []};
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.getAttribute('class') ? '.' + el.getAttribute('class').split(' ').join('.') : '');
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > vw + 0.5) out.overflow.push(name(el) + ' ends at x=' + Math.round(r.right));
    if (!(el instanceof SVGElement) && getComputedStyle(el).display !== 'inline' &&
        el.scrollWidth > el.clientWidth + 1) {
      out.overflow.push(name(el) + ' content ' + el.scrollWidth + 'px wide in ' + el.clientWidth + 'px');
    }
  }
  for (const t of document.querySelectorAll('svg text')) {
    const r = t.getBoundingClientRect(), s = t.ownerSVGElement.getBoundingClientRect();
    if (r.left < s.left - 0.5 || r.right > s.right + 0.5 || r.top < s.top - 0.5 || r.bottom > s.bottom + 0.5) {
      out.overflow.push('chart text "' + t.textContent + '" outside its chart');
    }
  }
  for (const tr of document.querySelectorAll('#summary tr[data-figure]')) {
    out.rows.push({scenario: tr.dataset.scenario, figure: tr.dataset.figure,
      cells: Array.from(tr.cells).map(c => c.innerText.trim())});
  }
  for (const s of document.querySelectorAll('section')) {
    out.headings.push({id: s.id, text: s.querySelector('h2').innerText.trim()});
  }
  for (const dt of document.querySelectorAll('dt')) out.terms.push(dt.innerText.trim());
  for (const svg of document.querySelectorAll('svg.latency')) {
    const band = svg.querySelector('rect.band').getBoundingClientRect();
    const plot = svg.querySelector('rect.plot').getBoundingClientRect();
    const c = {scenario: svg.dataset.scenario, counts: {}, misplaced: [], band_above_plot: band.bottom <= plot.top};
    for (const m of svg.querySelectorAll('.mk')) {
      const r = m.getBoundingClientRect(), cy = (r.top + r.bottom) / 2;
      const kind = m.classList[1], k = m.dataset.side + '/' + kind;
      c.counts[k] = (c.counts[k] || 0) + Number(m.dataset.n);
      const inBand = cy >= band.top && cy <= band.bottom;
      const inPlot = cy >= plot.top - 1 && cy <= plot.bottom + 1;
      if ((kind === 'none') !== inBand || (kind !== 'none' && !inPlot) || r.width === 0 || r.height === 0) {
        c.misplaced.push(k + ' at y=' + Math.round(cy - band.top) + ' below the band top');
      }
    }
    out.charts.push(c);
  }
  for (const p of document.querySelectorAll('polyline.lostline')) {
    out.lost.push({scenario: p.closest('svg').dataset.scenario, side: p.dataset.side, final: Number(p.dataset.final),
      drawn: p.getBoundingClientRect().width > 0});
  }
  for (const s of document.querySelectorAll('svg.heap')) {
    out.heap.push({scenario: s.dataset.scenario, lines: s.querySelectorAll('polyline').length});
  }
  for (const r of document.querySelectorAll('rect.bar')) {
    out.bars.push({scenario: r.closest('svg').dataset.scenario, side: r.dataset.side,
      figure: r.dataset.figure, width: r.getBoundingClientRect().width});
  }
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.hidden = true;
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>`

// Probe is what ProbeScript measured on a rendered report.
type Probe struct {
	Viewport    float64  `json:"viewport"`
	ScrollWidth float64  `json:"scroll_width"`
	Height      float64  `json:"height"`
	Overflow    []string `json:"overflow"`
	Rows        []struct {
		Scenario string   `json:"scenario"`
		Figure   string   `json:"figure"`
		Cells    []string `json:"cells"`
	} `json:"rows"`
	Headings []struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	} `json:"headings"`
	Terms  []string `json:"terms"`
	Charts []struct {
		Scenario      string         `json:"scenario"`
		Counts        map[string]int `json:"counts"`
		Misplaced     []string       `json:"misplaced"`
		BandAbovePlot bool           `json:"band_above_plot"`
	} `json:"charts"`
	Lost []struct {
		Scenario string  `json:"scenario"`
		Side     string  `json:"side"`
		Final    float64 `json:"final"`
		Drawn    bool    `json:"drawn"`
	} `json:"lost"`
	Heap []struct {
		Scenario string `json:"scenario"`
		Lines    int    `json:"lines"`
	} `json:"heap"`
	Bars []struct {
		Scenario string  `json:"scenario"`
		Side     string  `json:"side"`
		Figure   string  `json:"figure"`
		Width    float64 `json:"width"`
	} `json:"bars"`
}

// ExtractProbe finds ProbeScript's findings in a browser's DOM dump.
func ExtractProbe(dom string) (*Probe, error) {
	_, rest, ok := strings.Cut(dom, `<pre id="probe"`)
	if ok {
		_, rest, ok = strings.Cut(rest, ">")
	}
	if !ok {
		return nil, fmt.Errorf("the page has no probe output: did the browser run the script?")
	}
	body, _, ok := strings.Cut(rest, "</pre>")
	if !ok {
		return nil, fmt.Errorf("the probe output is not terminated")
	}
	var p Probe
	if err := json.Unmarshal([]byte(htmlUnescape(body)), &p); err != nil {
		return nil, fmt.Errorf("the probe output is not JSON: %w", err)
	}
	return &p, nil
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#39;", "'", "&amp;", "&").Replace(s)
}

// CheckRendered compares what a browser drew (p) with the run's results
// (r, as the -json output says them) and returns every disagreement: a
// reader of the page must come to the table's conclusions.
func CheckRendered(r *Result, p *Probe) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	if p.ScrollWidth > p.Viewport {
		fail("the page is %.0f px wide in a %.0f px window", p.ScrollWidth, p.Viewport)
	}
	for _, o := range p.Overflow {
		fail("overflow: %s", o)
	}
	for _, t := range []string{"legit", "success", "answered", "no answer"} {
		if !slices.Contains(p.Terms, t) {
			fail("the page does not define %q", t)
		}
	}

	rows := map[string][]string{}
	for _, row := range p.Rows {
		rows[row.Scenario+"\x00"+row.Figure] = row.Cells
	}
	heads := map[string]string{}
	for _, h := range p.Headings {
		heads[h.ID] = h.Text
	}
	heap := map[string]int{}
	for _, h := range p.Heap {
		heap[h.Scenario] = h.Lines
	}
	charts := map[string]int{}
	for i, c := range p.Charts {
		charts[c.Scenario] = i
	}
	for _, s := range r.Scenarios {
		if h, ok := heads[s.Name]; !ok || !strings.HasPrefix(h, s.Name+":") {
			fail("%s: the section heading %q does not start with the table's name", s.Name, h)
		}
		if heap[s.Name] != 2 {
			fail("%s: no heap chart with both twins", s.Name)
		}
		for _, f := range s.Figures {
			cells, ok := rows[s.Name+"\x00"+f.Name]
			want := []string{value(f, f.Naive), value(f, f.Hardened), mark(f)}
			if !ok || len(cells) != 5 {
				fail("%s/%s: no table row", s.Name, f.Name)
			} else if cells[1] != f.Name || cells[2] != want[0] || cells[3] != want[1] || cells[4] != want[2] {
				fail("%s/%s: the table says %q, the results %q", s.Name, f.Name, cells[1:], append([]string{f.Name}, want...))
			}
			checkBars(s.Name, f, p, fail)
		}
		checkLatency(s, p, charts, fail)
		checkLost(s, p, fail)
	}
	return bad
}

// checkBars checks that a figure's two bars are in the ratio of its two
// values, as a reader compares them.
func checkBars(scenario string, f Figure, p *Probe, fail func(string, ...any)) {
	w := map[string]float64{}
	n := 0
	for _, b := range p.Bars {
		if b.Scenario == scenario && b.Figure == f.Name {
			w[b.Side] = b.Width
			n++
		}
	}
	if n != 2 {
		fail("%s/%s: %d bars drawn, want one per twin", scenario, f.Name, n)
		return
	}
	if f.Unit == "bool" || math.IsNaN(f.Naive) || math.IsNaN(f.Hardened) || f.Naive <= 0 || f.Hardened <= 0 {
		return
	}
	// Both bars share one linear scale from zero, so the shorter one must
	// be the longer one times the ratio of the values, within a pixel.
	long, short, ratio := w["naive"], w["hardened"], f.Hardened/f.Naive
	if short > long {
		long, short, ratio = short, long, 1/ratio
	}
	if want := long * ratio; math.Abs(short-want) > 1+0.02*want {
		fail("%s/%s: bars %.1f and %.1f px, the values say %.1f and %.1f px", scenario, f.Name, long, short, long, want)
	}
}

// checkLatency checks that every legitimate request is drawn, and drawn
// where its outcome says: no answer in the band, the others in the plot.
func checkLatency(s ScenarioResult, p *Probe, charts map[string]int, fail func(string, ...any)) {
	if len(s.Naive.Legit)+len(s.Hardened.Legit) <= 4 {
		return
	}
	i, ok := charts[s.Name]
	if !ok {
		fail("%s: no latency chart", s.Name)
		return
	}
	c := p.Charts[i]
	if !c.BandAbovePlot {
		fail("%s: the no-answer band is not above the plot", s.Name)
	}
	for _, m := range c.Misplaced {
		fail("%s: mark drawn in the wrong place: %s", s.Name, m)
	}
	for _, sd := range []struct {
		name string
		r    *SideResult
	}{{"naive", s.Naive}, {"hardened", s.Hardened}} {
		want := map[string]int{}
		for _, l := range sd.r.Legit {
			switch {
			case !l.Answered:
				want["none"]++
			case l.OK:
				want["ok"]++
			default:
				want["fail"]++
			}
		}
		for _, kind := range []string{"ok", "fail", "none"} {
			if got := c.Counts[sd.name+"/"+kind]; got != want[kind] {
				fail("%s: %d %s %s marks drawn, the results have %d", s.Name, got, sd.name, kind, want[kind])
			}
		}
	}
}

// checkLost checks that the lost-updates chart ends at the table's figure.
func checkLost(s ScenarioResult, p *Probe, fail func(string, ...any)) {
	var fig *Figure
	for i := range s.Figures {
		if s.Figures[i].Name == "lost updates" {
			fig = &s.Figures[i]
		}
	}
	if fig == nil {
		return
	}
	got := map[string]float64{}
	for _, l := range p.Lost {
		if l.Scenario == s.Name && l.Drawn {
			got[l.Side] = l.Final
		}
	}
	if v, ok := got["naive"]; !ok || v != fig.Naive {
		fail("%s: the lost-updates chart ends at %v for naive, the table says %v", s.Name, v, fig.Naive)
	}
	if v, ok := got["hardened"]; !ok || v != fig.Hardened {
		fail("%s: the lost-updates chart ends at %v for hardened, the table says %v", s.Name, v, fig.Hardened)
	}
}
