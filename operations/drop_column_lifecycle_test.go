package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestDropColumnLifecycle: drop_column's cases of the lifecycle (lifecycletest.Run).
func TestDropColumnLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "drop_column",
			YAML: `operations: [ { drop_column: { table: users, column: legacy } } ]`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.ExpectErr(nw, "does not exist", "SELECT legacy FROM users")
				e.Exec(nw, "INSERT INTO users (email) VALUES ('n@x')")
				e.ExpectRows(old, []string{"l1"}, "SELECT legacy FROM users WHERE id = 1")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectErr(e.DB, "does not exist", "SELECT legacy FROM public.users")
			},
		},
		{
			Name:  "drop_not_null_column_with_down",
			Setup: []string{"ALTER TABLE users ALTER COLUMN legacy SET NOT NULL"},
			YAML: `
operations:
  - drop_column: { table: users, column: legacy, down: "'from-new:' || email" }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				var id int64
				if err := nw.QueryRow(ctx(), "INSERT INTO users (email) VALUES ('q@x') RETURNING id").Scan(&id); err != nil {
					e.T.Fatal(err)
				}
				e.ExpectRows(old, []string{"from-new:q@x"}, "SELECT legacy FROM users WHERE id = $1", id)
				e.Exec(old, "INSERT INTO users (email, legacy) VALUES ('r@x', 'kept')")
				e.ExpectRows(old, []string{"kept"}, "SELECT legacy FROM users WHERE email = 'r@x' LIMIT 1")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.users'::regclass AND NOT tgisinternal")
			},
		},
	})
}
