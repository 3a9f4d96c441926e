package phases_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestRewriteLifecycle(t *testing.T) {
	t.Parallel()
	cases := []lifecycle{
		{
			name: "alter_type",
			yaml: `
operations:
  - alter_column: { table: users, column: score, type: bigint }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"bigint"}, "SELECT pg_typeof(score)::text FROM users WHERE id = 1")
				e.expectRows(old, []string{"integer"}, "SELECT pg_typeof(score)::text FROM users WHERE id = 1")
				e.exec(old, "UPDATE users SET score = 5 WHERE id = 1")
				e.expectRows(nw, []string{"5"}, "SELECT score FROM users WHERE id = 1")
				e.exec(nw, "UPDATE users SET score = 6000000 WHERE id = 2")
				e.expectRows(old, []string{"6000000"}, "SELECT score FROM users WHERE id = 2")
				var id int64
				if err := nw.QueryRow(ctx(), "INSERT INTO users (email, score) VALUES ('n@x', 77) RETURNING id").Scan(&id); err != nil {
					e.t.Fatal(err)
				}
				e.expectRows(old, []string{"77"}, "SELECT score FROM users WHERE id = $1", id)
				// The default (0) holds in both versions.
				e.expectRows(nw, []string{"0"}, "INSERT INTO users (email) VALUES ('d@x') RETURNING score")
				e.expectRows(old, []string{"0"}, "INSERT INTO users (email) VALUES ('e@x') RETURNING score")
				e.expectRows(nw, []string{"0"}, "SELECT count(*) FROM users WHERE score IS NULL")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"bigint|NO|0"}, "SELECT data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'score'")
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name LIKE '_online%'")
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.users'::regclass AND NOT tgisinternal")
			},
		},
		{
			name: "alter_text_to_int_with_up_down",
			setup: []string{
				"CREATE TABLE items (id int PRIMARY KEY, qty text)",
				"INSERT INTO items SELECT g, (g * 10)::text FROM generate_series(1, 30) g",
				"INSERT INTO items VALUES (31, 'lots')",
			},
			yaml: `
operations:
  - alter_column:
      table: items
      column: qty
      type: integer
      up: "CASE WHEN qty ~ '^[0-9]+$' THEN qty::integer ELSE -1 END"
      down: "qty::text"
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"10", "-1"}, "SELECT qty FROM items WHERE id IN (1, 31) ORDER BY id")
				e.exec(old, "INSERT INTO items VALUES (100 + (SELECT count(*) FROM items), 'many')")
				e.expectRows(nw, []string{"-1"}, "SELECT qty FROM items ORDER BY id DESC LIMIT 1")
				e.exec(nw, "UPDATE items SET qty = 99 WHERE id = 2")
				e.expectRows(old, []string{"99"}, "SELECT qty FROM items WHERE id = 2")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"integer"}, "SELECT pg_typeof(qty)::text FROM items WHERE id = 1")
			},
		},
		{
			name:  "set_not_null_with_up",
			setup: []string{"UPDATE users SET name = NULL WHERE id % 2 = 0"},
			yaml: `
operations:
  - alter_column: { table: users, column: name, nullable: false, up: "COALESCE(name, 'anonymous')" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"anonymous"}, "SELECT name FROM users WHERE id = 2")
				e.expectRows(old, []string{"NULL"}, "SELECT name FROM users WHERE id = 2")
				// The old version may still write NULL; the new version sees up's value.
				e.exec(old, "UPDATE users SET name = NULL WHERE id = 3")
				e.expectRows(nw, []string{"anonymous"}, "SELECT name FROM users WHERE id = 3")
				e.exec(old, "INSERT INTO users (email) VALUES ('nameless@x')")
				e.expectRows(nw, []string{"anonymous"}, "SELECT name FROM users WHERE email = 'nameless@x' LIMIT 1")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"NO"}, "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'name'")
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM users WHERE name IS NULL")
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_constraint WHERE conname LIKE '%online_nn'")
			},
		},
		{
			name: "add_column_with_up",
			yaml: `
operations:
  - add_column:
      table: users
      column: { name: domain, type: text, nullable: false }
      up: "split_part(email, '@', 2)"
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"x.io"}, "SELECT domain FROM users WHERE id = 1")
				e.exec(old, "INSERT INTO users (email) VALUES ('a@old.example')")
				e.expectRows(nw, []string{"old.example"}, "SELECT domain FROM users WHERE email = 'a@old.example' LIMIT 1")
				e.exec(old, "UPDATE users SET email = 'b@moved.example' WHERE id = 4")
				e.expectRows(nw, []string{"moved.example"}, "SELECT domain FROM users WHERE id = 4")
				e.expectRows(nw, []string{"given"}, "INSERT INTO users (email, domain) VALUES ('c@y', 'given') RETURNING domain")
				// An explicit NULL through the new version cannot be told from
				// an old-version insert, and is filled by up (see README).
				e.expectRows(nw, []string{"y"}, "INSERT INTO users (email, domain) VALUES ('d@y', NULL) RETURNING domain")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"NO"}, "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users' AND column_name = 'domain'")
			},
		},
		{
			name:  "drop_not_null_column_with_down",
			setup: []string{"ALTER TABLE users ALTER COLUMN legacy SET NOT NULL"},
			yaml: `
operations:
  - drop_column: { table: users, column: legacy, down: "'from-new:' || email" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				var id int64
				if err := nw.QueryRow(ctx(), "INSERT INTO users (email) VALUES ('q@x') RETURNING id").Scan(&id); err != nil {
					e.t.Fatal(err)
				}
				e.expectRows(old, []string{"from-new:q@x"}, "SELECT legacy FROM users WHERE id = $1", id)
				e.exec(old, "INSERT INTO users (email, legacy) VALUES ('r@x', 'kept')")
				e.expectRows(old, []string{"kept"}, "SELECT legacy FROM users WHERE email = 'r@x' LIMIT 1")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.users'::regclass AND NOT tgisinternal")
			},
		},
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
	cases = append(cases, lifecycle{
		name: "identity_and_generated_columns",
		setup: []string{
			"CREATE TABLE parts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, price int NOT NULL, qty int NOT NULL, total int GENERATED ALWAYS AS (price * qty) STORED, label text)",
			"INSERT INTO parts (price, qty, label) SELECT g, 2, 'Part ' || g FROM generate_series(1, 40) g",
		},
		yaml: `operations: [ { alter_column: { table: parts, column: label, type: varchar(40), up: "upper(label)", down: "label" } } ]`,
		during: func(e *env, old, nw *pgx.Conn, _ bool) {
			e.expectRows(nw, []string{"PART 3|6"}, "SELECT label, total FROM parts WHERE id = 3")
			e.expectRows(old, []string{"part x|14"}, "INSERT INTO parts (price, qty, label) VALUES (7, 2, 'part x') RETURNING label, total")
			e.expectRows(nw, []string{"NEW|900"}, "INSERT INTO parts (price, qty, label) VALUES (900, 1, 'NEW') RETURNING label, total")
		},
		after: func(e *env, nw *pgx.Conn) {
			e.expectRows(e.db, []string{"PART 4|8"}, "SELECT label, total FROM parts WHERE id = 4")
		},
	})
	cases = append(cases, lifecycle{
		name: "replica_identity_survives_rewrite",
		setup: []string{
			"CREATE TABLE codes (id int PRIMARY KEY, code text NOT NULL)",
			"CREATE UNIQUE INDEX codes_code_key ON codes (code)",
			"ALTER TABLE codes REPLICA IDENTITY USING INDEX codes_code_key",
			"INSERT INTO codes SELECT g, 'c' || g FROM generate_series(1, 20) g",
		},
		yaml: `operations: [ { alter_column: { table: codes, column: code, type: varchar(20) } } ]`,
		during: func(e *env, old, nw *pgx.Conn, _ bool) {
			e.expectRows(nw, []string{"c1"}, "SELECT code FROM codes WHERE id = 1")
		},
		after: func(e *env, nw *pgx.Conn) {
			e.expectRows(e.db, []string{"i|codes_code_key"}, `SELECT c.relreplident::text, i.relname FROM pg_class c
JOIN pg_index x ON x.indrelid = c.oid AND x.indisreplident JOIN pg_class i ON i.oid = x.indexrelid WHERE c.relname = 'codes'`)
		},
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runLifecycle(t, tc)
		})
	}
}
