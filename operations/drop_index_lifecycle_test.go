package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestDropIndexLifecycle: drop_index's cases of the lifecycle (lifecycletest.Run).
func TestDropIndexLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name:  "drop_index",
			Setup: []string{"CREATE INDEX users_name_idx ON users (name)"},
			YAML:  `operations: [ { drop_index: { name: users_name_idx } } ]`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				// The old version keeps its index until complete.
				e.ExpectRows(e.DB, []string{"1"}, "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_name_idx'")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_name_idx'")
			},
		},
	})
}
