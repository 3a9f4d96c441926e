package operations_test

import (
	"testing"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestMoveLifecycle: the four moves of data between tables (add_column and
// create_table with from) through the lifecycle: writes through both
// versions reach the other place, every row reads the same through both,
// complete and rollback fail at each statement without changing anything.
func TestMoveLifecycle(t *testing.T) {
	t.Parallel()
	var cases []lifecycletest.Case
	for _, m := range lifecycletest.Moves() {
		cases = append(cases, m.Case)
	}
	lifecycletest.RunAll(t, cases)
}
