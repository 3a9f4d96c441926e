package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestAddColumnLifecycle: add_column's cases of the lifecycle (lifecycletest.Run).
func TestAddColumnLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "add_column",
			YAML: `
operations:
  - add_column: { table: users, column: { nullable: true, name: nickname, type: text, comment: what friends say } }
  - add_column: { table: users, column: { name: level, type: int, nullable: false, default: "7" } }
`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				var id int64
				if err := old.QueryRow(ctx(), "INSERT INTO users (email) VALUES ('old@x') RETURNING id").Scan(&id); err != nil {
					e.T.Fatal(err)
				}
				e.ExpectRows(nw, []string{"NULL|7"}, "SELECT nickname, level FROM users WHERE id = $1", id)
				e.ExpectRows(nw, []string{"nick|3"}, "INSERT INTO users (email, nickname, level) VALUES ('new@x', 'nick', 3) RETURNING nickname, level")
				e.ExpectRows(nw, []string{"7"}, "SELECT level FROM users WHERE id = 1")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"what friends say"}, "SELECT col_description(attrelid, attnum) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'nickname'")
			},
		},
		{
			Name: "add_column_with_up",
			YAML: `
operations:
  - add_column:
      table: users
      column: { name: domain, type: text, nullable: false }
      up: "split_part(email, '@', 2)"
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectRows(nw, []string{"x.io"}, "SELECT domain FROM users WHERE id = 1")
				e.Exec(old, "INSERT INTO users (email) VALUES ('a@old.example')")
				e.ExpectRows(nw, []string{"old.example"}, "SELECT domain FROM users WHERE email = 'a@old.example' LIMIT 1")
				e.Exec(old, "UPDATE users SET email = 'b@moved.example' WHERE id = 4")
				e.ExpectRows(nw, []string{"moved.example"}, "SELECT domain FROM users WHERE id = 4")
				e.ExpectRows(nw, []string{"given"}, "INSERT INTO users (email, domain) VALUES ('c@y', 'given') RETURNING domain")
				// An explicit NULL through the new version cannot be told from
				// an old-version insert, and is filled by up (see README).
				e.ExpectRows(nw, []string{"y"}, "INSERT INTO users (email, domain) VALUES ('d@y', NULL) RETURNING domain")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"NO"}, "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'domain'")
			},
		},
	})
}
