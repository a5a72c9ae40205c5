package obs

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Set is a set of registered sources that writes the Prometheus text
// exposition format with the standard library only, for programs in the
// root module (the examples), which must not depend on a Prometheus client.
// The contrib/prometheus module is the way for applications.
type Set struct {
	mu      sync.Mutex
	sources []func(emit sampleFunc)
}

// sampleFunc receives one sample of family m from the instance name.
type sampleFunc func(f family, name string, value float64, labelValue string)

// family is a Metric without its type parameter.
type family struct {
	name, help, label string
	kind              Kind
}

// Register adds the source read, named name, exported with metrics. read
// is called once per WriteText.
func Register[S any](set *Set, name string, read func() S, metrics []Metric[S]) {
	fams := make([]family, len(metrics))
	for i, m := range metrics {
		fams[i] = family{name: m.PromName(), help: m.Help, label: m.Label, kind: m.Kind}
	}
	src := func(emit sampleFunc) {
		st := read()
		for i, m := range metrics {
			m.Read(st, func(v float64, lv string) { emit(fams[i], name, v, lv) })
		}
	}
	set.mu.Lock()
	set.sources = append(set.sources, src)
	set.mu.Unlock()
}

// WriteText writes every source's metrics in the Prometheus text format
// (version 0.0.4): one HELP and TYPE block per family, samples of several
// instances grouped under it.
func (set *Set) WriteText(w io.Writer) error {
	type block struct {
		f     family
		lines []string
	}
	var order []*block
	byName := map[string]*block{}
	set.mu.Lock()
	sources := append([]func(sampleFunc){}, set.sources...)
	set.mu.Unlock()
	for _, src := range sources {
		src(func(f family, name string, v float64, lv string) {
			b := byName[f.name]
			if b == nil {
				b = &block{f: f}
				byName[f.name] = b
				order = append(order, b)
			}
			line := f.name + "{" + NameLabel + `="` + escape(name) + `"`
			if f.label != "" {
				line += "," + f.label + `="` + escape(lv) + `"`
			}
			b.lines = append(b.lines, line+"} "+strconv.FormatFloat(v, 'g', -1, 64))
		})
	}
	bw := bufio.NewWriter(w)
	for _, b := range order {
		typ := "counter"
		if b.f.kind == Gauge {
			typ = "gauge"
		}
		bw.WriteString("# HELP " + b.f.name + " " + strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(b.f.help) + "\n")
		bw.WriteString("# TYPE " + b.f.name + " " + typ + "\n")
		for _, l := range b.lines {
			bw.WriteString(l + "\n")
		}
	}
	return bw.Flush()
}

// escape escapes a label value for the text format.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
