package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestRenameColumnLifecycle: rename_column's cases of the lifecycle (lifecycletest.Run).
func TestRenameColumnLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "rename_column",
			YAML: `operations: [ { rename_column: { table: users, from: email, to: email_address } } ]`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.ExpectRows(nw, []string{"u1@x.io"}, "SELECT email_address FROM users WHERE id = 1")
				e.ExpectErr(nw, "does not exist", "SELECT email FROM users WHERE id = 1")
				var id int64
				if err := nw.QueryRow(ctx(), "INSERT INTO users (email_address) VALUES ('from-new@x') RETURNING id").Scan(&id); err != nil {
					e.T.Fatal(err)
				}
				e.ExpectRows(old, []string{"from-new@x"}, "SELECT email FROM users WHERE id = $1", id)
				e.Exec(old, "UPDATE users SET email = 'changed-by-old@x' WHERE id = $1", id)
				e.ExpectRows(nw, []string{"changed-by-old@x"}, "SELECT email_address FROM users WHERE id = $1", id)
				e.Exec(nw, "UPDATE users SET email_address = 'changed-by-new@x' WHERE id = $1", id)
				e.ExpectRows(old, []string{"changed-by-new@x"}, "SELECT email FROM users WHERE id = $1", id)
				e.Exec(nw, "DELETE FROM users WHERE id = $1", id)
				e.ExpectRows(old, []string{"0"}, "SELECT count(*) FROM users WHERE id = $1", id)
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"u1@x.io"}, "SELECT email_address FROM public.users WHERE id = 1")
				e.ExpectRows(nw, []string{"u1@x.io"}, "SELECT email_address FROM users WHERE id = 1")
			},
		},
	})
}
