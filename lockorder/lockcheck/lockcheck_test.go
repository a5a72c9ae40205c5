package lockcheck_test

import (
	"testing"

	"github.com/garrison-go/garrison/lockorder/lockcheck"
	"golang.org/x/tools/go/analysis/analysistest"
)

// TestAnalyzer checks every report against the want comments of the
// packages under testdata/src, and that nothing else is reported:
//
//   - blocking: blocking operations under a lock (true positives);
//   - negative: deferred unlocks, unlock before send, select with default,
//     different instances, locks released in a branch (no report);
//   - order: inversions, double and recursive locking, missing unlocks;
//   - escape: pointers escaping changuard callbacks, and copies that do not;
//   - goker: kernels modelled on real-world blocking bugs.
//
// The packages are loaded in one run: type-checking their dependencies
// (net/http) from source dominates the test's time.
func TestAnalyzer(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), lockcheck.Analyzer,
		"blocking", "negative", "order", "escape", "goker")
}
