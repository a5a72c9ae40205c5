// Package obs is the one catalog of the metrics garrison's primitives
// export: for each Stats type, the metric names, help texts, kinds and
// labels, and how each value is read from a snapshot. The Prometheus and
// OpenTelemetry modules under contrib/ and the standard-library exposition
// of the examples all read this catalog, so a figure has the same name
// everywhere and a new Stats field is exported by editing one place.
//
// Every figure is read from Stats() when a scrape or collection asks for
// it: exporting adds nothing to the primitives' hot paths.
package obs

import "strings"

// Namespace prefixes every metric name.
const Namespace = "garrison"

// NameLabel is the label (attribute) naming the instance a figure comes
// from, given when it is registered ("jobs", "public-listener"). Its values
// are chosen by the program, never by a client, so they stay bounded.
const NameLabel = "name"

// Kind says how a figure behaves.
type Kind uint8

const (
	// Counter only grows (until the process restarts).
	Counter Kind = iota
	// Gauge goes up and down.
	Gauge
)

// Emit receives one value of a metric, with the value of its variable
// label ("" for a metric without one).
type Emit func(value float64, labelValue string)

// Metric describes one metric family read from a snapshot of type S.
type Metric[S any] struct {
	Subsystem string // the primitive: "spawn", "listener", "chan"
	Name      string // snake_case, without the namespace, subsystem or _total
	Help      string
	Kind      Kind
	// Label is the name of the one variable label ("reason", "outcome"),
	// or "" for none. Its values come from a fixed set (Reason strings,
	// outcome names): never from client input.
	Label string
	// Read emits the metric's values from one snapshot: once for a metric
	// without Label, once per label value otherwise.
	Read func(s S, emit Emit)
}

// PromName is the Prometheus name: garrison_<subsystem>_<name>, with
// _total for counters.
func (m Metric[S]) PromName() string {
	n := Namespace + "_" + m.Subsystem + "_" + m.Name
	if m.Kind == Counter {
		n += "_total"
	}
	return n
}

// OTelName is the OpenTelemetry instrument name:
// garrison.<subsystem>.<name>, without a _total suffix (exporters add
// what their format needs).
func (m Metric[S]) OTelName() string {
	return Namespace + "." + m.Subsystem + "." + m.Name
}

func counter[S any](sub, name, help string, f func(S) uint64) Metric[S] {
	return Metric[S]{Subsystem: sub, Name: name, Help: help, Kind: Counter,
		Read: func(s S, emit Emit) { emit(float64(f(s)), "") }}
}

func gauge[S any](sub, name, help string, f func(S) float64) Metric[S] {
	return Metric[S]{Subsystem: sub, Name: name, Help: help, Kind: Gauge,
		Read: func(s S, emit Emit) { emit(f(s), "") }}
}

// labeled is a counter with one label whose values are given in order by
// names and read by f.
func labeled[S any](sub, name, help, label string, names []string, f func(S) []uint64) Metric[S] {
	return Metric[S]{Subsystem: sub, Name: name, Help: help, Kind: Counter, Label: label,
		Read: func(s S, emit Emit) {
			for i, v := range f(s) {
				emit(float64(v), names[i])
			}
		}}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// validName reports whether s is a valid metric or label name piece.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return !strings.HasSuffix(s, "_total")
}
