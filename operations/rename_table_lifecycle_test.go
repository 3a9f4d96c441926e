package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestRenameTableLifecycle: rename_table's cases of the lifecycle (lifecycletest.Run).
func TestRenameTableLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "rename_table",
			YAML: `operations: [ { rename_table: { from: users, to: members } } ]`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.ExpectRows(nw, []string{"u2@x.io"}, "SELECT email FROM members WHERE id = 2")
				if exclusive {
					e.ExpectErr(nw, "does not exist", "SELECT 1 FROM users")
				}
				e.Exec(nw, "UPDATE members SET name = 'renamed' WHERE id = 2")
				e.ExpectRows(old, []string{"renamed"}, "SELECT name FROM users WHERE id = 2")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"renamed"}, "SELECT name FROM public.members WHERE id = 2")
			},
		},
	})
}
