package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestDropTableLifecycle: drop_table's cases of the lifecycle (lifecycletest.Run).
func TestDropTableLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name:  "drop_table",
			Setup: []string{"CREATE TABLE scratch (id int PRIMARY KEY)", "INSERT INTO scratch VALUES (1)"},
			YAML:  `operations: [ { drop_table: { name: scratch } } ]`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				if exclusive {
					e.ExpectErr(nw, "does not exist", "SELECT 1 FROM scratch")
				}
				e.ExpectRows(old, []string{"1"}, "SELECT id FROM scratch")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"NULL"}, "SELECT to_regclass('public.scratch')::text")
			},
		},
	})
}
