// Package observe registers a catalog of internal/obs metrics as
// OpenTelemetry observable instruments fed by one Stats snapshot per
// collection.
package observe

import (
	"context"
	"errors"
	"reflect"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/garrison-go/garrison/internal/obs"
)

// Register creates the instruments of metrics on meter and a callback
// that reads src.Stats() once per collection and observes every figure,
// with the attribute name=<name> and the metric's own label, if any. The
// returned Registration's Unregister stops the callback.
func Register[S any](meter metric.Meter, name string, src interface{ Stats() S }, metrics []obs.Metric[S]) (metric.Registration, error) {
	if meter == nil {
		return nil, errors.New("garrisonotel: nil meter")
	}
	if name == "" {
		return nil, errors.New("garrisonotel: empty name")
	}
	if IsNil(src) {
		return nil, errors.New("garrisonotel: nil source for " + name)
	}
	return RegisterFunc(meter, name, src.Stats, metrics)
}

// RegisterFunc is Register for a snapshot function, such as lockorder.Stats.
func RegisterFunc[S any](meter metric.Meter, name string, read func() S, metrics []obs.Metric[S]) (metric.Registration, error) {
	insts := make([]metric.Observable, len(metrics))
	for i, m := range metrics {
		var err error
		if m.Kind == obs.Counter {
			insts[i], err = meter.Int64ObservableCounter(m.OTelName(), metric.WithDescription(m.Help))
		} else {
			// Float: some gauges are fractional (latencies in seconds).
			insts[i], err = meter.Float64ObservableGauge(m.OTelName(), metric.WithDescription(m.Help))
		}
		if err != nil {
			return nil, err
		}
	}
	base := attribute.String(obs.NameLabel, name)
	plain := metric.WithAttributeSet(attribute.NewSet(base))
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := read()
		for i, m := range metrics {
			m.Read(st, func(v float64, lv string) {
				opt := plain
				if m.Label != "" {
					opt = metric.WithAttributes(base, attribute.String(m.Label, lv))
				}
				switch inst := insts[i].(type) {
				case metric.Int64ObservableCounter:
					o.ObserveInt64(inst, int64(v), opt)
				case metric.Float64ObservableGauge:
					o.ObserveFloat64(inst, v, opt)
				}
			})
		}
		return nil
	}, insts...)
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
