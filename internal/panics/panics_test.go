package panics

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recoverFrom runs f the way the packages do, and returns the *Error for a
// call that did not return.
func recoverFrom(f func()) *Error {
	ch := make(chan *Error, 1)
	go func() {
		returned := false
		defer func() {
			if !returned {
				ch <- New("test: fn", recover())
			} else {
				ch <- nil
			}
		}()
		f()
		returned = true
	}()
	return <-ch
}

func TestPanicValueAndStack(t *testing.T) {
	e := recoverFrom(func() { panic("boom") })
	require.NotNil(t, e)
	assert.Equal(t, "boom", e.Value)
	assert.ErrorIs(t, e, ErrPanic)
	assert.Contains(t, string(e.Stack), "TestPanicValueAndStack", "the stack shows the panic site")
	assert.True(t, strings.HasPrefix(e.Error(), "test: fn panicked: boom"), e.Error())
}

func TestPanicErrorValueUnwraps(t *testing.T) {
	e := recoverFrom(func() { panic(fs.ErrNotExist) })
	assert.ErrorIs(t, e, fs.ErrNotExist)
	assert.ErrorIs(t, e, ErrPanic)
	var pe *Error
	require.ErrorAs(t, error(e), &pe)
}

func TestPanicNilIsNotGoexit(t *testing.T) {
	e := recoverFrom(func() { panic(nil) })
	require.NotNil(t, e)
	var pn *runtime.PanicNilError
	assert.ErrorAs(t, e, &pn)
	assert.NotErrorIs(t, e, ErrGoexit)
}

func TestGoexit(t *testing.T) {
	e := recoverFrom(runtime.Goexit)
	require.NotNil(t, e)
	assert.ErrorIs(t, e, ErrGoexit)
	assert.ErrorIs(t, e, ErrPanic)
	assert.Contains(t, e.Error(), "called runtime.Goexit")
}

func TestReturnIsNoPanic(t *testing.T) {
	assert.Nil(t, recoverFrom(func() {}))
}

func TestLimiterBurstThenRate(t *testing.T) {
	l := limiter{tokens: LogBurst}
	now := time.Unix(1000, 0)
	for i := range LogBurst {
		ok, _ := l.allow(now)
		require.True(t, ok, "record %d of the burst", i)
	}
	ok, _ := l.allow(now)
	require.False(t, ok)
	ok, _ = l.allow(now.Add(LogEvery / 2))
	require.False(t, ok)
	ok, suppressed := l.allow(now.Add(LogEvery + LogEvery/2))
	require.True(t, ok)
	assert.Equal(t, int64(2), suppressed)
}

func TestReportLogsThroughDefault(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	logLimiter = limiter{tokens: LogBurst}

	e := recoverFrom(func() { panic(errors.New("kaboom")) })
	Report(e)
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	assert.Contains(t, out, "kaboom")
	assert.Contains(t, out, "stack=")
	assert.Contains(t, out, "op=\"test: fn\"")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
