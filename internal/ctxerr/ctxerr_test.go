package ctxerr

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type deadlineCause struct{}

func (deadlineCause) Error() string        { return "budget spent" }
func (deadlineCause) Is(target error) bool { return target == context.DeadlineExceeded }

func TestCheck(t *testing.T) {
	//lint:ignore SA1012 a nil context is the input under test
	if err := Check(nil); !errors.Is(err, ErrNilContext) { //nolint:staticcheck
		t.Fatalf("Check(nil) = %v, want ErrNilContext", err)
	}
	if err := Check(context.Background()); err != nil {
		t.Fatalf("Check(live ctx) = %v, want nil", err)
	}

	cause := errors.New("client went away")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	err := Check(ctx)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Fatalf("Check(canceled with cause) = %v, want both Canceled and the cause", err)
	}

	ctx, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := Check(ctx); err != context.Canceled {
		t.Fatalf("Check(canceled) = %v, want context.Canceled itself", err)
	}

	ctx, cancel3 := context.WithDeadlineCause(context.Background(), time.Unix(0, 0), deadlineCause{})
	defer cancel3()
	err = Err(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || fmt.Sprint(err) != "budget spent" {
		t.Fatalf("Err(cause that matches DeadlineExceeded) = %v", err)
	}
}
