package siege

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/garrison-go/garrison/lockorder"
)

// reportPkg is the child program that replays the deadlock scenario's two
// call sites in a checking build.
const reportPkg = "github.com/garrison-go/garrison/examples/siege/internal/deadlockreport"

// watchLockOrder collects lockorder's inversion reports for the run instead
// of letting the default handler panic in the middle of a request.
func (e *env) watchLockOrder() (restore func()) {
	return lockorder.SetHandler(func(err *lockorder.OrderError) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.orders = append(e.orders, err.Error())
	})
}

// lockReport returns lockorder's report of the inversion that the hardened
// twin's transfer and audit commit, and how it was obtained. Checking is
// compiled in only with the lockorder build tag or -race; when this binary
// has neither, it builds and runs the scenario's two call sites as a child
// with the tag, so `go run ./examples/siege` still shows the report.
func (e *env) lockReport(ctx context.Context) (report, how string) {
	if lockorder.Enabled() && !e.childReport {
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(e.orders) == 0 {
			return "", "lockorder checking is compiled in (lockorder tag or -race), but no inversion was reported"
		}
		return compactReport(e.orders[0]), "lock-order report (checking compiled into this binary; reported the first time both orders were seen, before any hang):"
	}
	c := e.child
	if c == nil {
		c = startReportBuild(ctx)
		defer c.close()
	}
	cmdline := "go run -tags lockorder ./examples/siege/internal/deadlockreport"
	out, err := c.run(ctx)
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			return "", fmt.Sprintf("this binary was built without lockorder checking and `go` is not available to build the replay (`%s`): %v", cmdline, err)
		}
		return "", fmt.Sprintf("the replay (`%s`) failed: %v", cmdline, err)
	}
	return compactReport(out), fmt.Sprintf("lock-order report from a child process, because this binary was built without checking: the siege built its deadlock replay with -tags lockorder in the background (%v, at low priority) and ran it; it does one transfer, then one audit, and no deadlock is needed. Same as `%s`:",
		c.took.Round(100*time.Millisecond), cmdline)
}

// reportChild is the replay program, built with the lockorder tag in the
// background when the run starts. The build runs at the lowest CPU
// priority (nice 19) so that it overlaps the first scenarios without
// taking CPU from the twins being measured, and the deadlock scenario does
// not wait for a compile.
type reportChild struct {
	bin    string
	dir    string
	built  chan struct{}
	err    error
	stderr bytes.Buffer
	took   time.Duration
}

func startReportBuild(ctx context.Context) *reportChild {
	c := &reportChild{built: make(chan struct{})}
	dir, err := os.MkdirTemp("", "siege-deadlockreport-")
	if err != nil {
		c.err = err
		close(c.built)
		return c
	}
	c.dir = dir
	c.bin = filepath.Join(dir, "deadlockreport")
	if runtime.GOOS == "windows" {
		c.bin += ".exe"
	}
	args := []string{"go", "build", "-tags", "lockorder", "-o", c.bin, reportPkg}
	if nice, err := exec.LookPath("nice"); err == nil {
		args = append([]string{nice, "-n", "19"}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stderr = &c.stderr
	start := time.Now()
	go func() {
		defer close(c.built)
		c.err = cmd.Run()
		c.took = time.Since(start)
	}()
	return c
}

// run waits for the build and runs the replay, both bounded by ctx and
// the replay by 30 s more.
func (c *reportChild) run(ctx context.Context) (string, error) {
	select {
	case <-c.built:
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	if c.err != nil {
		return "", fmt.Errorf("build: %w\n%s", c.err, strings.TrimSpace(c.stderr.String()))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.bin)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// close waits for the build to end (its ctx bounds it) and removes it.
func (c *reportChild) close() {
	<-c.built
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// compactReport keeps the report's headline and edges and, of each stack,
// the frames in the examples (the call sites a reader is looking for),
// saying how many frames of net/http and middleware it left out.
func compactReport(report string) string {
	var b strings.Builder
	omitted := 0
	flush := func() {
		if omitted > 0 {
			fmt.Fprintf(&b, "        (%d frames outside examples/ omitted)\n", omitted)
			omitted = 0
		}
	}
	for _, line := range strings.Split(report, "\n") {
		if strings.HasPrefix(line, "        ") && !strings.Contains(line, "/examples/") {
			omitted++
			continue
		}
		if !strings.HasPrefix(line, "        ") {
			flush()
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	flush()
	return strings.TrimRight(b.String(), "\n")
}
