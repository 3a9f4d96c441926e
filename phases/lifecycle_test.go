package phases_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/phases"
)

// lifecycle is one operation's end-to-end check: start, then reads and
// writes through both versions at once; rollback, which must leave the
// schema exactly as before; start again; complete.
type lifecycle struct {
	name  string
	setup []string
	yaml  string
	// during runs after each start with a connection on each version.
	// exclusive is false for a search_path that lists later schemas, where
	// a table the new version hides can still be found.
	during func(e *env, old, new *pgx.Conn, exclusive bool)
	// after runs after complete, with a connection on the new version.
	after func(e *env, new *pgx.Conn)
}

const usersTable = `CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text, legacy text, score int NOT NULL DEFAULT 0)`
const usersRows = `INSERT INTO users (email, name, legacy) SELECT 'u' || g || '@x.io', 'n' || g, 'l' || g FROM generate_series(1, 50) g`

func runLifecycle(t *testing.T, tc lifecycle) {
	e := newEnv(t, append([]string{usersTable, usersRows}, tc.setup...)...)
	before := e.dump()
	m := parse(t, tc.name, tc.yaml)
	vs := "public_" + m.VersionSchema

	for round := 1; round <= 2; round++ {
		res := e.start(tc.name, tc.yaml)
		if res.VersionSchema != vs {
			t.Fatalf("version schema %q, want %q", res.VersionSchema, vs)
		}
		if !e.schemaExists(vs) {
			t.Fatalf("round %d: version schema %s not published", round, vs)
		}
		old, nw := e.version("public"), e.version(vs)
		// An application may list more schemas after its version.
		multi := e.version(vs + ", public")
		if tc.during != nil {
			tc.during(e, old, nw, true)
			tc.during(e, old, multi, false)
		}
		// No state nobody can leave: complete (round 1) or rollback
		// (round 2) fails at each of its statements in turn and changes
		// nothing; both versions still serve, and then the other command,
		// or the same one, succeeds.
		if round == 1 {
			e.failEachStep("complete", func(eng *phases.Engine) (*phases.Result, error) { return eng.Complete(context.Background()) })
		} else {
			e.failEachStep("rollback", func(eng *phases.Engine) (*phases.Result, error) { return eng.Rollback(context.Background()) })
		}
		e.versionsServe(vs)
		if round == 1 {
			e.rollback()
			if e.schemaExists(vs) {
				t.Fatalf("rollback left version schema %s", vs)
			}
			if after := e.dump(); after != before {
				t.Fatalf("rollback did not restore the schema:\n--- before\n%s\n--- after\n%s", before, after)
			}
		}
	}
	e.complete()
	if tc.after != nil {
		tc.after(e, e.version(vs))
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	cases := []lifecycle{
		{
			name: "create_table",
			yaml: `
operations:
  - create_table:
      name: posts
      comment: user posts
      columns:
        - { name: id, type: bigserial, pk: true }
        - { name: user_id, type: bigint, nullable: true, references: { name: posts_user_fk, table: users, column: id, on_delete: CASCADE } }
        - { name: title, type: text, nullable: false, check: { name: posts_title_len, constraint: "length(title) > 0" } }
        - { name: slug, type: text, nullable: true, unique: true }
        - { name: created, type: timestamptz, default: "now()" }
`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.exec(nw, "INSERT INTO posts (user_id, title) VALUES (1, 'hello')")
				e.expectRows(nw, []string{"true"}, "SELECT count(*) >= 1 FROM posts WHERE title = 'hello' AND created IS NOT NULL")
				e.expectErr(nw, "posts_title_len", "INSERT INTO posts (user_id, title) VALUES (1, '')")
				e.expectErr(nw, "posts_user_fk", "INSERT INTO posts (user_id, title) VALUES (999999, 'x')")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"user posts"}, "SELECT obj_description('public.posts'::regclass, 'pg_class')")
			},
		},
		{
			name: "add_column",
			yaml: `
operations:
  - add_column: { table: users, column: { nullable: true, name: nickname, type: text, comment: what friends say } }
  - add_column: { table: users, column: { name: level, type: int, nullable: false, default: "7" } }
`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				var id int64
				if err := old.QueryRow(ctx(), "INSERT INTO users (email) VALUES ('old@x') RETURNING id").Scan(&id); err != nil {
					e.t.Fatal(err)
				}
				e.expectRows(nw, []string{"NULL|7"}, "SELECT nickname, level FROM users WHERE id = $1", id)
				e.expectRows(nw, []string{"nick|3"}, "INSERT INTO users (email, nickname, level) VALUES ('new@x', 'nick', 3) RETURNING nickname, level")
				e.expectRows(nw, []string{"7"}, "SELECT level FROM users WHERE id = 1")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"what friends say"}, "SELECT col_description(attrelid, attnum) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'nickname'")
			},
		},
		{
			name: "rename_column",
			yaml: `operations: [ { rename_column: { table: users, from: email, to: email_address } } ]`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.expectRows(nw, []string{"u1@x.io"}, "SELECT email_address FROM users WHERE id = 1")
				e.expectErr(nw, "does not exist", "SELECT email FROM users WHERE id = 1")
				var id int64
				if err := nw.QueryRow(ctx(), "INSERT INTO users (email_address) VALUES ('from-new@x') RETURNING id").Scan(&id); err != nil {
					e.t.Fatal(err)
				}
				e.expectRows(old, []string{"from-new@x"}, "SELECT email FROM users WHERE id = $1", id)
				e.exec(old, "UPDATE users SET email = 'changed-by-old@x' WHERE id = $1", id)
				e.expectRows(nw, []string{"changed-by-old@x"}, "SELECT email_address FROM users WHERE id = $1", id)
				e.exec(nw, "UPDATE users SET email_address = 'changed-by-new@x' WHERE id = $1", id)
				e.expectRows(old, []string{"changed-by-new@x"}, "SELECT email FROM users WHERE id = $1", id)
				e.exec(nw, "DELETE FROM users WHERE id = $1", id)
				e.expectRows(old, []string{"0"}, "SELECT count(*) FROM users WHERE id = $1", id)
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"u1@x.io"}, "SELECT email_address FROM public.users WHERE id = 1")
				e.expectRows(nw, []string{"u1@x.io"}, "SELECT email_address FROM users WHERE id = 1")
			},
		},
		{
			name: "drop_column",
			yaml: `operations: [ { drop_column: { table: users, column: legacy } } ]`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.expectErr(nw, "does not exist", "SELECT legacy FROM users")
				e.exec(nw, "INSERT INTO users (email) VALUES ('n@x')")
				e.expectRows(old, []string{"l1"}, "SELECT legacy FROM users WHERE id = 1")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectErr(e.db, "does not exist", "SELECT legacy FROM public.users")
			},
		},
		{
			name: "rename_table",
			yaml: `operations: [ { rename_table: { from: users, to: members } } ]`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.expectRows(nw, []string{"u2@x.io"}, "SELECT email FROM members WHERE id = 2")
				if exclusive {
					e.expectErr(nw, "does not exist", "SELECT 1 FROM users")
				}
				e.exec(nw, "UPDATE members SET name = 'renamed' WHERE id = 2")
				e.expectRows(old, []string{"renamed"}, "SELECT name FROM users WHERE id = 2")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"renamed"}, "SELECT name FROM public.members WHERE id = 2")
			},
		},
		{
			name:  "drop_table",
			setup: []string{"CREATE TABLE scratch (id int PRIMARY KEY)", "INSERT INTO scratch VALUES (1)"},
			yaml:  `operations: [ { drop_table: { name: scratch } } ]`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				if exclusive {
					e.expectErr(nw, "does not exist", "SELECT 1 FROM scratch")
				}
				e.expectRows(old, []string{"1"}, "SELECT id FROM scratch")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"NULL"}, "SELECT to_regclass('public.scratch')::text")
			},
		},
		{
			name: "create_index",
			yaml: `
operations:
  - create_index: { table: users, name: users_email_uniq, columns: [email], unique: true }
  - create_index:
      table: users
      name: users_name_partial
      columns: { name: { sort: DESC, nulls: LAST } }
      predicate: "score > 0"
      include: [email]
`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.expectErr(old, "users_email_uniq", "INSERT INTO users (email) VALUES ('u3@x.io')")
				e.expectRows(e.db, []string{"2"}, "SELECT count(*) FROM pg_indexes WHERE indexname IN ('users_email_uniq', 'users_name_partial')")
			},
		},
		{
			name:  "drop_index",
			setup: []string{"CREATE INDEX users_name_idx ON users (name)"},
			yaml:  `operations: [ { drop_index: { name: users_name_idx } } ]`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				// The old version keeps its index until complete.
				e.expectRows(e.db, []string{"1"}, "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_name_idx'")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_name_idx'")
			},
		},
		{
			name: "sql",
			yaml: `
operations:
  - sql:
      up: CREATE TABLE audit (id bigserial PRIMARY KEY, what text)
      down: DROP TABLE audit
`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.exec(nw, "INSERT INTO audit (what) VALUES ('x')")
				e.expectRows(nw, []string{"u1@x.io"}, "SELECT email FROM users WHERE id = 1")
			},
		},
		{
			name: "alter_column_default_comment",
			yaml: `
operations:
  - alter_column: { table: users, column: score, default: "42", comment: the score }
  - alter_column: { table: users, column: name, default: "'anon'" }
`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.expectRows(old, []string{"0|NULL"}, "INSERT INTO users (email) VALUES ('o@x') RETURNING score, name")
				e.expectRows(nw, []string{"42|anon"}, "INSERT INTO users (email) VALUES ('n@x') RETURNING score, name")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"42|anon"}, "INSERT INTO public.users (email) VALUES ('p@x') RETURNING score, name")
				e.expectRows(e.db, []string{"the score"}, "SELECT col_description(attrelid, attnum) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'score'")
			},
		},
		{
			name: "alter_column_constraints",
			yaml: `
operations:
  - alter_column: { table: users, column: email, unique: { name: users_email_key } }
  - alter_column: { table: users, column: score, check: { name: score_positive, constraint: "score >= 0" } }
  - alter_column: { table: users, column: name, nullable: true }
`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.expectErr(nw, "users_email_key", "INSERT INTO users (email) VALUES ('u1@x.io')")
				e.expectErr(nw, "score_positive", "INSERT INTO users (email, score) VALUES ('neg@x', -1)")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"u|true"}, "SELECT contype::text, convalidated FROM pg_constraint WHERE conname = 'users_email_key'")
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
