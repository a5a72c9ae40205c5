//go:build lockorder || race

package blockhook

import "testing"

func TestHooksReachTheRegisteredChecker(t *testing.T) {
	old := hooks
	defer func() { hooks = old }()
	type call struct {
		op  string
		obj any
		ev  Event
	}
	var calls []call
	rec := func(op string) func(any, Event) {
		return func(obj any, ev Event) { calls = append(calls, call{op, obj, ev}) }
	}
	Register(&Hooks{Wait: rec("wait"), Unblock: rec("unblock"), Begin: rec("begin")})
	x := new(int)
	Wait(x, Value)
	Unblock(x, Room)
	Begin(x, Done)
	End(x, Done)
	want := []call{{"wait", x, Value}, {"unblock", x, Room}, {"begin", x, Done}, {"unblock", x, Done}}
	if len(calls) != len(want) {
		t.Fatalf("calls = %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d = %v, want %v", i, calls[i], want[i])
		}
	}
	hooks = nil
	Wait(x, Value) // no checker: a no-op
	if len(calls) != len(want) {
		t.Fatal("a call reached a cleared hook")
	}
}
