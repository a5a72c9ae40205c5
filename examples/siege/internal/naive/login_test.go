package naive

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestLoginLimitsForgetEvictedNames pins down the weakness the siege's
// chosen-keys scenario attacks, so that the naive twin stays the pattern
// it stands for: within its table a name gets its burst once, and a name
// pushed out by enough others comes back with a fresh one.
func TestLoginLimitsForgetEvictedNames(t *testing.T) {
	l := newLoginLimits(Config{LoginBurst: 3, LoginEvery: time.Hour, LoginUsers: 100})
	allowed := func() int {
		n := 0
		for range 5 {
			if l.allow("victim") {
				n++
			}
		}
		return n
	}
	assert.Equal(t, 3, allowed())
	assert.Equal(t, 0, allowed(), "the burst is spent")
	for i := range 100 {
		l.allow(fmt.Sprintf("junk-%d", i))
	}
	assert.Equal(t, 3, allowed(), "evicted, the victim comes back fresh")
	assert.LessOrEqual(t, l.order.Len(), 100, "memory stays bounded")
	assert.Len(t, l.byKey, l.order.Len())
}
