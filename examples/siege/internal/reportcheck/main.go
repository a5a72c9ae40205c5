// Command reportcheck reads a siege HTML report the way a reader does, in
// a headless Chromium window 1000 px wide, and compares what it drew with
// the run's -json results: table cells, bars, where each legitimate
// request's mark landed, the lost-updates line, the heap charts, and
// anything wider than the window. It also takes a screenshot of the whole
// page and checks that both twins' colours are on it. It exits 1 on any
// disagreement, listing each.
//
//	go run ./examples/siege -quick -json -report r.html > r.json
//	go run ./examples/siege/internal/reportcheck -results r.json -report r.html
//
// .ci/checks/report.sh runs it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/garrison-go/garrison/examples/siege/internal/siege"
)

func main() {
	results := flag.String("results", "", "the run's -json output")
	report := flag.String("report", "", "the run's -report page")
	browser := flag.String("chromium", "chromium", "the Chromium (or Chrome) binary")
	width := flag.Int("width", 1000, "window width in CSS pixels")
	shot := flag.String("screenshot", "", "also keep the page's screenshot here")
	flag.Parse()
	if *results == "" || *report == "" {
		fmt.Fprintln(os.Stderr, "reportcheck: -results and -report are required")
		os.Exit(2)
	}
	problems, summary, err := run(*results, *report, *browser, *width, *shot)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reportcheck:", err)
		os.Exit(2)
	}
	if len(problems) > 0 {
		fmt.Printf("reportcheck: the page disagrees with the results in %d place(s):\n  %s\n", len(problems), strings.Join(problems, "\n  "))
		os.Exit(1)
	}
	fmt.Println("reportcheck:", summary)
}

func run(resultsPath, reportPath, browser string, width int, shotPath string) ([]string, string, error) {
	f, err := os.Open(resultsPath)
	if err != nil {
		return nil, "", err
	}
	res, err := siege.ReadJSON(f)
	f.Close()
	if err != nil {
		return nil, "", err
	}
	page, err := os.ReadFile(reportPath)
	if err != nil {
		return nil, "", err
	}
	if bytes.Contains(page, []byte("<script")) {
		return []string{"the report has a script of its own; it must be self-contained and static"}, "", nil
	}
	dir, err := os.MkdirTemp("", "reportcheck")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	probed := bytes.Replace(page, []byte("</body>"), []byte(siege.ProbeScript+"</body>"), 1)
	probePath := filepath.Join(dir, "probe.html")
	if err := os.WriteFile(probePath, probed, 0o600); err != nil {
		return nil, "", err
	}
	dom, err := chromium(browser, dir, fmt.Sprintf("--window-size=%d,1200", width), "--dump-dom", "file://"+probePath)
	if err != nil {
		return nil, "", err
	}
	probe, err := siege.ExtractProbe(string(dom))
	if err != nil {
		return nil, "", err
	}
	problems := siege.CheckRendered(res, probe)

	// The screenshot: the whole page at the same width.
	if shotPath == "" {
		shotPath = filepath.Join(dir, "page.png")
	}
	if shotPath, err = filepath.Abs(shotPath); err != nil {
		return nil, "", err
	}
	height := min(int(probe.Height)+20, 30000)
	if _, err := chromium(browser, dir, fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+shotPath, "file://"+filepath.Join(dir, "probe.html")); err != nil {
		return nil, "", err
	}
	problems = append(problems, checkScreenshot(shotPath, width)...)

	marks := 0
	for _, s := range res.Scenarios {
		marks += len(s.Naive.Legit) + len(s.Hardened.Legit)
	}
	figures := 0
	for _, s := range res.Scenarios {
		figures += len(s.Figures)
	}
	return problems, fmt.Sprintf("%d scenarios, %d table rows, %d bars, %d legit requests placed, page %d×%.0f px: the page agrees with the results",
		len(res.Scenarios), figures, len(probe.Bars), marks, width, probe.Height), nil
}

// chromium runs the browser headless, with a profile of its own in dir.
func chromium(browser, dir string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--force-device-scale-factor=1"}
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", browser, err, stderr.String())
	}
	return out, nil
}

// checkScreenshot checks that the page was painted at the window's width
// with both twins' colours on it.
func checkScreenshot(path string, width int) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{"no screenshot: " + err.Error()}
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return []string{"the screenshot is not a PNG: " + err.Error()}
	}
	var bad []string
	if w := img.Bounds().Dx(); w != width {
		bad = append(bad, fmt.Sprintf("the screenshot is %d px wide, not %d", w, width))
	}
	for _, c := range []struct {
		name    string
		r, g, b uint32
	}{{"naive red", 0xd6, 0x27, 0x28}, {"hardened green", 0x2a, 0x9d, 0x3f}} {
		if n := countColour(img, c.r, c.g, c.b); n < 500 {
			bad = append(bad, fmt.Sprintf("the screenshot has %d pixels of %s: the charts were not painted", n, c.name))
		}
	}
	return bad
}

func countColour(img image.Image, r, g, b uint32) int {
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if cr>>8 == r && cg>>8 == g && cb>>8 == b {
				n++
			}
		}
	}
	return n
}
