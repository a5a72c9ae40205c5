package criticality

import (
	"context"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	if got := From(ctx); got != Normal {
		t.Fatalf("From(empty) = %v", got)
	}
	//lint:ignore SA1012 a nil context is the input under test
	if got := From(nil); got != Normal { //nolint:staticcheck
		t.Fatalf("From(nil) = %v", got)
	}
	for _, l := range []Level{Sheddable, Normal, Critical} {
		if got := From(With(ctx, l)); got != l {
			t.Errorf("From(With(%v)) = %v", l, got)
		}
		p, err := Parse(l.String())
		if err != nil || p != l {
			t.Errorf("Parse(%q) = %v, %v", l.String(), p, err)
		}
	}
	if got := From(With(ctx, 7)); got != Normal {
		t.Errorf("an invalid level bought %v", got)
	}
	if _, err := Parse("urgent"); err == nil {
		t.Error("Parse accepted an unknown level")
	}
	if !(Share(Sheddable) < Share(Normal) && Share(Normal) < Share(Critical) && Share(Critical) == 1) {
		t.Error("shares do not order the levels")
	}
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	if _, ok := Lookup(ctx); ok {
		t.Fatal("Lookup(empty) reported a level")
	}
	//lint:ignore SA1012 a nil context is the input under test
	if _, ok := Lookup(nil); ok { //nolint:staticcheck
		t.Fatal("Lookup(nil) reported a level")
	}
	for _, l := range []Level{Sheddable, Normal, Critical} {
		if got, ok := Lookup(With(ctx, l)); !ok || got != l {
			t.Errorf("Lookup(With(%v)) = %v, %v", l, got, ok)
		}
	}
}
