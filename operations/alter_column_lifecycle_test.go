package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// TestAlterColumnLifecycle: alter_column's cases of the lifecycle (lifecycletest.Run).
func TestAlterColumnLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "alter_column_default_comment",
			YAML: `
operations:
  - alter_column: { table: users, column: score, default: "42", comment: the score }
  - alter_column: { table: users, column: name, default: "'anon'" }
`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.ExpectRows(old, []string{"0|NULL"}, "INSERT INTO users (email) VALUES ('o@x') RETURNING score, name")
				e.ExpectRows(nw, []string{"42|anon"}, "INSERT INTO users (email) VALUES ('n@x') RETURNING score, name")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"42|anon"}, "INSERT INTO public.users (email) VALUES ('p@x') RETURNING score, name")
				e.ExpectRows(e.DB, []string{"the score"}, "SELECT col_description(attrelid, attnum) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'score'")
			},
		},
		{
			Name: "alter_column_constraints",
			YAML: `
operations:
  - alter_column: { table: users, column: email, unique: { name: users_email_key } }
  - alter_column: { table: users, column: score, check: { name: score_positive, constraint: "score >= 0" } }
  - alter_column: { table: users, column: name, nullable: true }
`,
			During: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.ExpectErr(nw, "users_email_key", "INSERT INTO users (email) VALUES ('u1@x.io')")
				e.ExpectErr(nw, "score_positive", "INSERT INTO users (email, score) VALUES ('neg@x', -1)")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"u|true"}, "SELECT contype::text, convalidated FROM pg_constraint WHERE conname = 'users_email_key'")
			},
		},
		{
			Name: "alter_type",
			YAML: `
operations:
  - alter_column: { table: users, column: score, type: bigint }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectRows(nw, []string{"bigint"}, "SELECT pg_typeof(score)::text FROM users WHERE id = 1")
				e.ExpectRows(old, []string{"integer"}, "SELECT pg_typeof(score)::text FROM users WHERE id = 1")
				e.Exec(old, "UPDATE users SET score = 5 WHERE id = 1")
				e.ExpectRows(nw, []string{"5"}, "SELECT score FROM users WHERE id = 1")
				e.Exec(nw, "UPDATE users SET score = 6000000 WHERE id = 2")
				e.ExpectRows(old, []string{"6000000"}, "SELECT score FROM users WHERE id = 2")
				var id int64
				if err := nw.QueryRow(ctx(), "INSERT INTO users (email, score) VALUES ('n@x', 77) RETURNING id").Scan(&id); err != nil {
					e.T.Fatal(err)
				}
				e.ExpectRows(old, []string{"77"}, "SELECT score FROM users WHERE id = $1", id)
				// The default (0) holds in both versions.
				e.ExpectRows(nw, []string{"0"}, "INSERT INTO users (email) VALUES ('d@x') RETURNING score")
				e.ExpectRows(old, []string{"0"}, "INSERT INTO users (email) VALUES ('e@x') RETURNING score")
				e.ExpectRows(nw, []string{"0"}, "SELECT count(*) FROM users WHERE score IS NULL")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"bigint|NO|0"}, "SELECT data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'score'")
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name LIKE '_online%'")
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.users'::regclass AND NOT tgisinternal")
			},
		},
		{
			Name: "alter_text_to_int_with_up_down",
			Setup: []string{
				"CREATE TABLE items (id int PRIMARY KEY, qty text)",
				"INSERT INTO items SELECT g, (g * 10)::text FROM generate_series(1, 30) g",
				"INSERT INTO items VALUES (31, 'lots')",
			},
			YAML: `
operations:
  - alter_column:
      table: items
      column: qty
      type: integer
      up: "CASE WHEN qty ~ '^[0-9]+$' THEN qty::integer ELSE -1 END"
      down: "qty::text"
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectRows(nw, []string{"10", "-1"}, "SELECT qty FROM items WHERE id IN (1, 31) ORDER BY id")
				e.Exec(old, "INSERT INTO items VALUES (100 + (SELECT count(*) FROM items), 'many')")
				e.ExpectRows(nw, []string{"-1"}, "SELECT qty FROM items ORDER BY id DESC LIMIT 1")
				e.Exec(nw, "UPDATE items SET qty = 99 WHERE id = 2")
				e.ExpectRows(old, []string{"99"}, "SELECT qty FROM items WHERE id = 2")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"integer"}, "SELECT pg_typeof(qty)::text FROM items WHERE id = 1")
			},
		},
		{
			Name:  "set_not_null_with_up",
			Setup: []string{"UPDATE users SET name = NULL WHERE id % 2 = 0"},
			YAML: `
operations:
  - alter_column: { table: users, column: name, nullable: false, up: "COALESCE(name, 'anonymous')" }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectRows(nw, []string{"anonymous"}, "SELECT name FROM users WHERE id = 2")
				e.ExpectRows(old, []string{"NULL"}, "SELECT name FROM users WHERE id = 2")
				// The old version may still write NULL; the new version sees up's value.
				e.Exec(old, "UPDATE users SET name = NULL WHERE id = 3")
				e.ExpectRows(nw, []string{"anonymous"}, "SELECT name FROM users WHERE id = 3")
				e.Exec(old, "INSERT INTO users (email) VALUES ('nameless@x')")
				e.ExpectRows(nw, []string{"anonymous"}, "SELECT name FROM users WHERE email = 'nameless@x' LIMIT 1")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"NO"}, "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'name'")
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM users WHERE name IS NULL")
				e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_constraint WHERE conname LIKE '%online_nn'")
			},
		},
		{
			Name: "identity_and_generated_columns",
			Setup: []string{
				"CREATE TABLE parts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, price int NOT NULL, qty int NOT NULL, total int GENERATED ALWAYS AS (price * qty) STORED, label text)",
				"INSERT INTO parts (price, qty, label) SELECT g, 2, 'Part ' || g FROM generate_series(1, 40) g",
			},
			YAML: `operations: [ { alter_column: { table: parts, column: label, type: varchar(40), up: "upper(label)", down: "label" } } ]`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectRows(nw, []string{"PART 3|6"}, "SELECT label, total FROM parts WHERE id = 3")
				e.ExpectRows(old, []string{"part x|14"}, "INSERT INTO parts (price, qty, label) VALUES (7, 2, 'part x') RETURNING label, total")
				e.ExpectRows(nw, []string{"NEW|900"}, "INSERT INTO parts (price, qty, label) VALUES (900, 1, 'NEW') RETURNING label, total")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"PART 4|8"}, "SELECT label, total FROM parts WHERE id = 4")
			},
		},
		{
			Name: "replica_identity_survives_rewrite",
			Setup: []string{
				"CREATE TABLE codes (id int PRIMARY KEY, code text NOT NULL)",
				"CREATE UNIQUE INDEX codes_code_key ON codes (code)",
				"ALTER TABLE codes REPLICA IDENTITY USING INDEX codes_code_key",
				"INSERT INTO codes SELECT g, 'c' || g FROM generate_series(1, 20) g",
			},
			YAML: `operations: [ { alter_column: { table: codes, column: code, type: varchar(20) } } ]`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.ExpectRows(nw, []string{"c1"}, "SELECT code FROM codes WHERE id = 1")
			},
			After: func(e *env, nw *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"i|codes_code_key"}, `SELECT c.relreplident::text, i.relname FROM pg_class c
JOIN pg_index x ON x.indrelid = c.oid AND x.indisreplident JOIN pg_class i ON i.oid = x.indexrelid WHERE c.relname = 'codes'`)
			},
		},
	})
}
