package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestDropConstraintLifecycle: drop_constraint's cases of the lifecycle (lifecycletest.Run).
func TestDropConstraintLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name:  "drop_constraint",
			Setup: []string{"ALTER TABLE users ADD CONSTRAINT name_short CHECK (length(name) < 10)"},
			YAML: `
operations:
  - drop_constraint: { table: users, name: name_short, up: name, down: "left(name, 9)" }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.Exec(nw, "UPDATE users SET name = 'a much longer name' WHERE id = 1")
				e.ExpectRows(old, []string{"a much lo"}, "SELECT name FROM users WHERE id = 1")
				e.ExpectErr(old, "name_short", "UPDATE users SET name = 'still too long for old' WHERE id = 2")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_constraint WHERE conname = 'name_short'")
				e.Exec(e.DB, "UPDATE users SET name = 'now allowed to be long' WHERE id = 3")
			},
		},
	})
}
