// Package collect turns a catalog of internal/obs metrics and a function
// returning a Stats snapshot into a prometheus.Collector.
package collect

import (
	"errors"
	"reflect"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garrison-go/garrison/internal/obs"
)

// Collector reads one snapshot per Collect and emits constant metrics
// from it: nothing is counted between scrapes, so it costs the primitive
// nothing outside a scrape.
type Collector[S any] struct {
	read    func() S
	metrics []obs.Metric[S]
	descs   []*prometheus.Desc
}

// New returns a Collector for the source src, which must have a method
// Stats() S, labelled name="<name>". It returns an error for an empty name
// or a nil source, which would fail only at the first scrape otherwise.
func New[S any](name string, src interface{ Stats() S }, metrics []obs.Metric[S]) (*Collector[S], error) {
	if name == "" {
		return nil, errors.New("garrisonprom: empty name")
	}
	if IsNil(src) {
		return nil, errors.New("garrisonprom: nil source for " + name)
	}
	return NewFunc(name, src.Stats, metrics), nil
}

// NewFunc is New for a snapshot function, such as lockorder.Stats.
func NewFunc[S any](name string, read func() S, metrics []obs.Metric[S]) *Collector[S] {
	c := &Collector[S]{read: read, metrics: metrics, descs: make([]*prometheus.Desc, len(metrics))}
	for i, m := range metrics {
		var variable []string
		if m.Label != "" {
			variable = []string{m.Label}
		}
		c.descs[i] = prometheus.NewDesc(m.PromName(), m.Help, variable, prometheus.Labels{obs.NameLabel: name})
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Stats call per scrape.
func (c *Collector[S]) Collect(ch chan<- prometheus.Metric) {
	st := c.read()
	for i, m := range c.metrics {
		vt := prometheus.CounterValue
		if m.Kind == obs.Gauge {
			vt = prometheus.GaugeValue
		}
		m.Read(st, func(v float64, lv string) {
			if m.Label == "" {
				ch <- prometheus.MustNewConstMetric(c.descs[i], vt, v)
				return
			}
			ch <- prometheus.MustNewConstMetric(c.descs[i], vt, v, lv)
		})
	}
}

// IsNil reports whether v is nil or a nil pointer in an interface.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}
