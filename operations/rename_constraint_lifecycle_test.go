package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestRenameConstraintLifecycle: rename_constraint's cases of the lifecycle (lifecycletest.Run).
func TestRenameConstraintLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "rename_constraint",
			Setup: []string{
				"ALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email LIKE '%@%')",
				"ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
			},
			YAML: `
operations:
  - rename_constraint: { table: users, from: users_email_check, to: users_email_has_at }
  - rename_constraint: { table: users, from: users_email_key, to: users_email_unique }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				// Names change at complete: both versions see the old ones.
				e.ExpectErr(nw, "users_email_check", "INSERT INTO users (email) VALUES ('no-at-sign')")
				e.ExpectErr(old, "users_email_key", "INSERT INTO users (email) VALUES ('u1@x.io')")
				e.ExpectRows(nw, []string{"u3@x.io"}, "SELECT email FROM users WHERE id = 3")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"users_email_has_at|c", "users_email_unique|u", "users_pkey|p"},
					"SELECT conname, contype::text FROM pg_constraint WHERE conrelid = 'public.users'::regclass AND contype <> 'n' ORDER BY 1")
				// The unique constraint's index went with it.
				e.ExpectRows(e.DB, []string{"users_email_unique", "users_pkey"}, "SELECT indexname FROM pg_indexes WHERE tablename = 'users' ORDER BY 1")
				e.ExpectErr(nw, "users_email_has_at", "INSERT INTO users (email) VALUES ('still-no-at-sign')")
				e.ExpectErr(nw, "users_email_unique", "INSERT INTO users (email) VALUES ('u1@x.io')")
			},
		},
	})
}
