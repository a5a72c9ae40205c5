//go:build lockorder || race

package lockorder

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSlogHandlerLogsInversion(t *testing.T) {
	var buf bytes.Buffer
	t.Cleanup(SetHandler(SlogHandler(slog.New(slog.NewJSONHandler(&buf, nil)))))
	a, b := classed("slog-a", 0), classed("slog-b", 0)
	run(func() { a.Lock(); b.Lock(); b.Unlock(); a.Unlock() })
	run(func() { b.Lock(); a.Lock(); a.Unlock(); b.Unlock() }) // logged, then proceeds

	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.Equal(t, "ERROR", line["level"])
	assert.Equal(t, "lockorder: order violation", line["msg"])
	assert.Equal(t, ErrInversion.Error(), line["kind"])
	assert.Contains(t, line["cycle"], "slog-a")
	assert.Contains(t, line["cycle"], "slog-b")
	assert.NotZero(t, line["goroutine"])
	assert.Contains(t, line["stack"], "log_test.go")
}

func TestSlogReporterAttributes(t *testing.T) {
	var buf bytes.Buffer
	report := SlogReporter(slog.New(slog.NewJSONHandler(&buf, nil)))
	report(Report{Class: "journal", Goroutine: 7, Waiting: true, Stack: "f\n\tx.go:1", HolderGoroutine: 9, HolderStack: "g\n\ty.go:2"})
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.Equal(t, "journal", line["class"])
	assert.Equal(t, true, line["waiting"])
	assert.Equal(t, float64(9), line["holder_goroutine"])
	assert.Equal(t, float64(0), line["suppressed"])
}
