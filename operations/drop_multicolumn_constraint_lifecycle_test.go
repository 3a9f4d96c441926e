package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestDropMulticolumnConstraintLifecycle: drop_multicolumn_constraint's cases of the lifecycle (lifecycletest.Run).
func TestDropMulticolumnConstraintLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name:  "drop_multicolumn_constraint",
			Setup: []string{"ALTER TABLE users ADD CONSTRAINT users_email_name_key UNIQUE (email, name)"},
			YAML: `
operations:
  - drop_multicolumn_constraint:
      table: users
      name: users_email_name_key
      up: { email: email, name: name }
      down: { email: email, name: "name || '-' || floor(random() * 1000000)::text" }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.Exec(nw, "INSERT INTO users (email, name) VALUES ('u1@x.io', 'n1')")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_constraint WHERE conname = 'users_email_name_key'")
			},
		},
	})
}
