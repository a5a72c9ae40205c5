package lockorder

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLeakProfileConfirmsPartialDeadlock runs testdata/leakdemo, a partial
// deadlock, in a checking build. With GOEXPERIMENT=goroutineleakprofile in
// the environment (Go 1.26+) the leak profile must confirm both goroutines
// and VerifyNone must name their locks; otherwise the test is skipped with
// the program's explanation.
func TestLeakProfileConfirmsPartialDeadlock(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	cmd := exec.CommandContext(t.Context(), goBin, "run", "-tags", "lockorder", "./testdata/leakdemo")
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	if strings.HasPrefix(s, "SKIP: ") {
		t.Skip(strings.TrimPrefix(strings.TrimSpace(s), "SKIP: "))
	}
	t.Logf("leakdemo:\n%s", s)
	require.Contains(t, s, "reported before the hang: lock order inversion: demo.")
	require.Contains(t, s, "Go's goroutine leak profile found 2 goroutine(s) blocked forever")
	require.Regexp(t, `holding demo\.A waiting for demo\.B`, s)
	require.Regexp(t, `holding demo\.B waiting for demo\.A`, s)
}
