package phases_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestConstraintLifecycle(t *testing.T) {
	t.Parallel()
	cases := []lifecycle{
		{
			name: "create_unique_in_place",
			yaml: `
operations:
  - create_constraint: { table: users, name: users_email_name_uniq, type: unique, columns: [email, name] }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectErr(nw, "users_email_name_uniq", "INSERT INTO users (email, name) VALUES ('u1@x.io', 'n1')")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"u"}, "SELECT contype::text FROM pg_constraint WHERE conname = 'users_email_name_uniq'")
			},
		},
		{
			name:  "create_check_with_up_down",
			setup: []string{"UPDATE users SET score = -5 WHERE id <= 3"},
			yaml: `
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
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"0"}, "SELECT score FROM users WHERE id = 1")
				e.expectRows(old, []string{"-5"}, "SELECT score FROM users WHERE id = 1")
				// The old version may still write what the new version refuses.
				e.exec(old, "UPDATE users SET score = -7 WHERE id = 2")
				e.expectRows(nw, []string{"0"}, "SELECT score FROM users WHERE id = 2")
				e.expectErr(nw, "score_nonneg", "UPDATE users SET score = -1 WHERE id = 4")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM users WHERE score < 0")
				e.expectRows(e.db, []string{"true"}, "SELECT convalidated FROM pg_constraint WHERE conname = 'score_nonneg'")
			},
		},
		{
			name: "create_foreign_key",
			setup: []string{
				"CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint)",
				"INSERT INTO orders (user_id) SELECT g FROM generate_series(1, 20) g",
			},
			yaml: `
operations:
  - create_constraint:
      table: orders
      name: orders_user_fk
      type: foreign_key
      columns: [user_id]
      references: { table: users, columns: [id], on_delete: CASCADE }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectErr(nw, "orders_user_fk", "INSERT INTO orders (user_id) VALUES (424242)")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"f|true"}, "SELECT contype::text, convalidated FROM pg_constraint WHERE conname = 'orders_user_fk'")
			},
		},
		{
			name: "create_primary_key",
			setup: []string{
				"CREATE TABLE events (code text NOT NULL, body text)",
				"CREATE UNIQUE INDEX events_code_key ON events (code)",
				"INSERT INTO events SELECT 'e' || g, 'b' FROM generate_series(1, 30) g",
			},
			yaml: `
operations:
  - create_constraint: { table: events, name: events_pkey, type: primary_key, columns: [code] }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.exec(nw, "INSERT INTO events (code, body) VALUES ('new-' || clock_timestamp()::text, 'x')")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"p"}, "SELECT contype::text FROM pg_constraint WHERE conname = 'events_pkey'")
			},
		},
		{
			name:  "drop_constraint",
			setup: []string{"ALTER TABLE users ADD CONSTRAINT name_short CHECK (length(name) < 10)"},
			yaml: `
operations:
  - drop_constraint: { table: users, name: name_short, up: name, down: "left(name, 9)" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.exec(nw, "UPDATE users SET name = 'a much longer name' WHERE id = 1")
				e.expectRows(old, []string{"a much lo"}, "SELECT name FROM users WHERE id = 1")
				e.expectErr(old, "name_short", "UPDATE users SET name = 'still too long for old' WHERE id = 2")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_constraint WHERE conname = 'name_short'")
				e.exec(e.db, "UPDATE users SET name = 'now allowed to be long' WHERE id = 3")
			},
		},
		{
			name:  "drop_multicolumn_constraint",
			setup: []string{"ALTER TABLE users ADD CONSTRAINT users_email_name_key UNIQUE (email, name)"},
			yaml: `
operations:
  - drop_multicolumn_constraint:
      table: users
      name: users_email_name_key
      up: { email: email, name: name }
      down: { email: email, name: "name || '-' || floor(random() * 1000000)::text" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.exec(nw, "INSERT INTO users (email, name) VALUES ('u1@x.io', 'n1')")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_constraint WHERE conname = 'users_email_name_key'")
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
