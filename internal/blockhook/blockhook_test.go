package blockhook

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEventNames(t *testing.T) {
	for ev, want := range map[Event]string{Done: "done", Value: "value", Room: "room", Signal: "signal", Event(99): "event"} {
		if got := ev.String(); got != want {
			t.Errorf("Event(%d).String() = %q, want %q", ev, got, want)
		}
	}
}
