package phases_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestRewriteLifecycle: rewrites composed in one operation (a new type, a
// name, and the indexes and constraints rebuilt on the new column). Each
// operation's own rewrite cases are in operations/<name>_lifecycle_test.go.
func TestRewriteLifecycle(t *testing.T) {
	t.Parallel()
	cases := []lifecycle{
		{
			name: "composed_changes",
			setup: []string{
				"CREATE UNIQUE INDEX users_email_key ON users (email)",
				"ALTER TABLE users ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%')",
			},
			yaml: `
operations:
  - alter_column: { table: users, column: email, type: varchar(100), name: email_address }
  - alter_column: { table: users, column: email_address, up: "lower(email_address)", down: "email_address" }
  - alter_column: { table: users, column: score, type: bigint, default: "10" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.exec(old, "UPDATE users SET email = 'MiXeD@X.io' WHERE id = 5")
				e.expectRows(nw, []string{"mixed@x.io|character varying"}, "SELECT email_address, pg_typeof(email_address)::text FROM users WHERE id = 5")
				e.expectRows(nw, []string{"10"}, "INSERT INTO users (email_address) VALUES ('z' || clock_timestamp()::text || '@n') RETURNING score")
				// The unique index and the check were rebuilt on the new column.
				e.expectErr(nw, "users_email_key", "INSERT INTO users (email_address) VALUES ('u1@x.io')")
				e.expectErr(nw, "email_has_at", "INSERT INTO users (email_address) VALUES ('no-at-sign')")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"users_email_key"}, "SELECT indexname FROM pg_indexes WHERE tablename = 'users' AND indexdef LIKE '%email_address%'")
				e.expectRows(e.db, []string{"email_has_at|true"}, "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'public.users'::regclass AND contype = 'c'")
				e.expectRows(e.db, []string{"10"}, "INSERT INTO public.users (email_address) VALUES ('after@x') RETURNING score")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runLifecycle(t, tc)
		})
	}
}
