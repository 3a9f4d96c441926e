package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestCreateConstraintLifecycle: create_constraint's cases of the lifecycle (lifecycletest.Run).
func TestCreateConstraintLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "create_unique_in_place",
			YAML: `
operations:
  - create_constraint: { table: users, name: users_email_name_uniq, type: unique, columns: [email, name] }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectErr(nw, "users_email_name_uniq", "INSERT INTO users (email, name) VALUES ('u1@x.io', 'n1')")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"u"}, "SELECT contype::text FROM pg_constraint WHERE conname = 'users_email_name_uniq'")
			},
		},
		{
			Name:  "create_check_with_up_down",
			Setup: []string{"UPDATE users SET score = -5 WHERE id <= 3"},
			YAML: `
operations:
  - create_constraint:
      table: users
      name: score_nonneg
      type: check
      columns: [score]
      check: "score >= 0"
      up: { score: "greatest(score, 0)" }
      down: { score: "score" }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectRows(nw, []string{"0"}, "SELECT score FROM users WHERE id = 1")
				e.ExpectRows(old, []string{"-5"}, "SELECT score FROM users WHERE id = 1")
				// The old version may still write what the new version refuses.
				e.Exec(old, "UPDATE users SET score = -7 WHERE id = 2")
				e.ExpectRows(nw, []string{"0"}, "SELECT score FROM users WHERE id = 2")
				e.ExpectErr(nw, "score_nonneg", "UPDATE users SET score = -1 WHERE id = 4")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM users WHERE score < 0")
				e.ExpectRows(e.DB, []string{"true"}, "SELECT convalidated FROM pg_constraint WHERE conname = 'score_nonneg'")
			},
		},
		{
			Name: "create_foreign_key",
			Setup: []string{
				"CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint)",
				"INSERT INTO orders (user_id) SELECT g FROM generate_series(1, 20) g",
			},
			YAML: `
operations:
  - create_constraint:
      table: orders
      name: orders_user_fk
      type: foreign_key
      columns: [user_id]
      references: { table: users, columns: [id], on_delete: CASCADE }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectErr(nw, "orders_user_fk", "INSERT INTO orders (user_id) VALUES (424242)")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"f|true"}, "SELECT contype::text, convalidated FROM pg_constraint WHERE conname = 'orders_user_fk'")
			},
		},
		{
			Name: "create_primary_key",
			Setup: []string{
				"CREATE TABLE events (code text NOT NULL, body text)",
				"CREATE UNIQUE INDEX events_code_key ON events (code)",
				"INSERT INTO events SELECT 'e' || g, 'b' FROM generate_series(1, 30) g",
			},
			YAML: `
operations:
  - create_constraint: { table: events, name: events_pkey, type: primary_key, columns: [code] }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.Exec(nw, "INSERT INTO events (code, body) VALUES ('new-' || clock_timestamp()::text, 'x')")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"p"}, "SELECT contype::text FROM pg_constraint WHERE conname = 'events_pkey'")
			},
		},
	})
}
