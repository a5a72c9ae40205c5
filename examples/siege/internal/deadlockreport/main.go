// Command deadlockreport replays the siege's deadlock scenario in a
// lock-order checking build and prints lockorder's report. The siege runs
// it as a child (`go run -tags lockorder ...`) when the siege itself was
// built without checking, so that `go run ./examples/siege` shows the
// report without a build tag.
//
// It needs no load and no real deadlock: one transfer, then one audit, one
// after the other, is enough for lockorder to see both orders and report
// the inversion. It exits 1 if nothing was reported (for example when
// built without the lockorder tag).
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/garrison-go/garrison/examples/hardened-server/app"
	"github.com/garrison-go/garrison/lockorder"
)

func main() {
	if !lockorder.Enabled() {
		fmt.Fprintln(os.Stderr, "deadlockreport: built without lock-order checking; run it with -tags lockorder")
		os.Exit(1)
	}
	var reports []*lockorder.OrderError
	restore := lockorder.SetHandler(func(err *lockorder.OrderError) { reports = append(reports, err) })
	a, err := app.New(app.Config{Upstream: "http://127.0.0.1:1", Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "deadlockreport:", err)
		os.Exit(1)
	}
	h := a.Handler()
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/transfer?from=alice&to=bob&amount=1", nil),
		httptest.NewRequest(http.MethodGet, "/audit?account=alice", nil),
	} {
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Fprintf(os.Stderr, "deadlockreport: %s %s -> %d\n", req.Method, req.URL, rec.Code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.Shutdown(ctx)
	restore()
	if len(reports) == 0 {
		fmt.Fprintln(os.Stderr, "deadlockreport: no inversion reported")
		os.Exit(1)
	}
	for _, r := range reports {
		fmt.Println(r.Error())
	}
}
