package phases_test

// The cases of issue 10 that used to leave a migration nobody could leave
// (complete failing every time, rollback refused), each run through the
// lifecycle harness, which also makes complete and rollback fail at every
// statement in turn (see atomic_test.go).

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

const pairTable = `CREATE TABLE t (id serial PRIMARY KEY, a int, b int, UNIQUE (a, b), CHECK (a IS DISTINCT FROM b))`
const pairRows = `INSERT INTO t (a, b) SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE g * 10 END FROM generate_series(1, 40) g`

func TestComposedRewrites(t *testing.T) {
	t.Parallel()
	cases := []lifecycle{
		{
			// Both columns of one unique constraint (and one check) change
			// type: the constraint is rebuilt once, over the two new
			// columns, and keeps its name.
			name:  "two_rewrites_share_a_unique_constraint",
			setup: []string{pairTable, pairRows},
			yaml: `
operations:
  - alter_column: { table: t, column: a, type: bigint, up: "a::bigint", down: "a::int" }
  - alter_column: { table: t, column: b, type: bigint, up: "b::bigint", down: "b::int" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.exec(old, "INSERT INTO t (a, b) VALUES (1000, 1) ON CONFLICT DO NOTHING")
				e.expectRows(nw, []string{"1000|1"}, "SELECT a, b FROM t WHERE a = 1000")
				e.exec(nw, "INSERT INTO t (a, b) VALUES (50000, 7)")
				e.expectRows(old, []string{"7"}, "SELECT b FROM t WHERE a = 50000")
				e.expectErr(nw, "duplicate key", "INSERT INTO t (a, b) VALUES (1000, 1)")
				e.exec(nw, "DELETE FROM t WHERE a = 50000")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"a|bigint", "b|bigint"}, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname IN ('a', 'b') ORDER BY 1")
				e.expectRows(e.db, []string{"t_a_b_key|UNIQUE (a, b)", "t_check|CHECK ((a IS DISTINCT FROM b))", "t_pkey|PRIMARY KEY (id)"},
					"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype <> 'n' ORDER BY 1")
				e.expectRows(e.db, nil, "SELECT id, a, b FROM t WHERE b IS DISTINCT FROM CASE WHEN a % 5 = 0 THEN NULL ELSE a * 10 END AND a <> 1000")
				e.expectRows(e.db, []string{"41|8"}, "SELECT count(*), count(*) FILTER (WHERE b IS NULL) FROM t")
				e.expectErr(nw, "duplicate key", "INSERT INTO t (a, b) VALUES (1, 10)")
			},
		},
		{
			// b's up reads a, which the same migration rewrites: during the
			// migration it reads the old a; nothing left depends on the old
			// column when complete drops it.
			name:  "up_reads_another_rewritten_column",
			setup: []string{pairTable, pairRows},
			yaml: `
operations:
  - alter_column: { table: t, column: a, type: bigint, up: "a::bigint", down: "a::int" }
  - alter_column: { table: t, column: b, up: "coalesce(b, a::int * 10 + 1)", down: "b" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"5|51", "10|101"}, "SELECT a, b FROM t WHERE id IN (5, 10) ORDER BY id")
				e.exec(old, "UPDATE t SET b = NULL WHERE id = 7")
				e.expectRows(nw, []string{"71"}, "SELECT b FROM t WHERE id = 7")
				e.exec(old, "UPDATE t SET b = 70 WHERE id = 7")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM t WHERE b IS NULL")
				e.expectRows(e.db, []string{"bigint"}, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'a'")
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname LIKE '_online%' AND NOT attisdropped")
			},
		},
		{
			// A check over two columns that already share a unique
			// constraint, with up/down for both.
			name:  "create_constraint_check_over_a_unique_pair",
			setup: []string{pairTable, pairRows},
			yaml: `
operations:
  - create_constraint:
      table: t
      name: t_sum_small
      type: check
      columns: [a, b]
      check: "coalesce(a, 0) + coalesce(b, 0) < 100000"
      up: { a: "a", b: "least(b, 1000)" }
      down: { a: "a", b: "b" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.exec(old, "INSERT INTO t (a, b) VALUES (2000, 99999) ON CONFLICT DO NOTHING")
				e.expectRows(nw, []string{"1000"}, "SELECT b FROM t WHERE a = 2000")
				e.expectErr(nw, "t_sum_small", "INSERT INTO t (a, b) VALUES (1, 99999)")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"t_a_b_key|UNIQUE (a, b)", "t_check|CHECK ((a IS DISTINCT FROM b))", "t_pkey|PRIMARY KEY (id)", "t_sum_small|CHECK (((COALESCE(a, 0) + COALESCE(b, 0)) < 100000))"},
					"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype <> 'n' ORDER BY 1")
				e.expectRows(e.db, []string{"1000"}, "SELECT b FROM t WHERE a = 2000")
			},
		},
		{
			name: "create_constraint_foreign_key_over_a_unique_pair",
			setup: []string{pairTable, pairRows,
				`CREATE TABLE p (x int, y int, PRIMARY KEY (x, y))`,
				`INSERT INTO p SELECT a, coalesce(b, 0) FROM t`},
			yaml: `
operations:
  - create_constraint:
      table: t
      name: t_p_fk
      type: foreign_key
      columns: [a, b]
      references: { table: p, columns: [x, y] }
      up: { a: "a", b: "coalesce(b, 0)" }
      down: { a: "a", b: "b" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"0"}, "SELECT count(*) FROM t WHERE b IS NULL")
				e.expectErr(nw, "t_p_fk", "INSERT INTO t (a, b) VALUES (-1, -2)")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"t_a_b_key|UNIQUE (a, b)", "t_check|CHECK ((a IS DISTINCT FROM b))", "t_p_fk|FOREIGN KEY (a, b) REFERENCES p(x, y)", "t_pkey|PRIMARY KEY (id)"},
					"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype <> 'n' ORDER BY 1")
			},
		},
		{
			// A comment changed with a rewrite is the new column's at
			// complete (the swap used to put the old comment back).
			name:  "rewrite_with_a_comment",
			setup: []string{"COMMENT ON COLUMN users.score IS 'old words'"},
			yaml: `
operations:
  - alter_column: { table: users, column: score, type: bigint, comment: "points, as a bigint" }
`,
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"bigint|points, as a bigint"}, "SELECT format_type(atttypid, atttypmod), col_description(attrelid, attnum) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'score'")
			},
		},
		{
			// An index that includes a column the same migration rewrites
			// is built after the backfill, on the new column.
			name: "index_includes_a_rewritten_column",
			yaml: `
operations:
  - alter_column: { table: users, column: score, type: bigint }
  - create_index: { table: users, name: users_name_incl, columns: [name], include: [score], predicate: "score >= 0" }
`,
			during: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.expectRows(nw, []string{"0"}, "SELECT score FROM users WHERE name = 'n1'")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"CREATE INDEX users_name_incl ON public.users USING btree (name) INCLUDE (score) WHERE (score >= 0)"}, "SELECT pg_get_indexdef('users_name_incl'::regclass)")
			},
		},
		{
			// A foreign key dropped in the same migration as the table it
			// references: the constraint goes before the table.
			name: "drop_a_foreign_key_and_its_table",
			setup: []string{`CREATE TABLE parent (id int PRIMARY KEY)`, `INSERT INTO parent SELECT generate_series(1, 5)`,
				`CREATE TABLE child (id int PRIMARY KEY, pid int CONSTRAINT child_pid_fkey REFERENCES parent)`,
				`INSERT INTO child SELECT g, g % 5 + 1 FROM generate_series(1, 20) g`},
			yaml: `
operations:
  - drop_multicolumn_constraint: { table: child, name: child_pid_fkey, up: { pid: "pid" }, down: { pid: "pid" } }
  - drop_table: { name: parent }
`,
			during: func(e *env, old, nw *pgx.Conn, exclusive bool) {
				e.expectRows(nw, []string{"20"}, "SELECT count(*) FROM child")
			},
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_class WHERE relname = 'parent'")
				e.expectRows(e.db, []string{"20|0"}, "SELECT count(*), (SELECT count(*) FROM pg_constraint WHERE conname = 'child_pid_fkey') FROM child")
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

// TestCompleteBlockedByALock: an application holds a lock past the retry
// deadline. complete fails and changes nothing; once the lock is gone,
// rollback works, and so does start and complete again.
func TestCompleteBlockedByALock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	const yaml = `
operations:
  - rename_column: { table: users, from: name, to: full_name }
  - alter_column: { table: users, column: email, up: "upper(email)", down: "lower(email)" }
  - drop_index: { name: users_pkey_copy }
`
	e.exec(e.db, "CREATE UNIQUE INDEX users_pkey_copy ON users (id)")
	e.start("blocked", yaml)
	want := e.digest()
	app, err := e.db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(context.Background(), "SELECT count(*) FROM users"); err != nil {
		t.Fatal(err)
	}
	eng := e.engine(func(c *phases.Config) { c.LockTimeout = 100 * time.Millisecond; c.LockRetryDeadline = time.Second })
	_, err = eng.Complete(context.Background())
	var lt *pg.LockTimeoutError
	if !errors.As(err, &lt) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("complete behind an application's lock: %v, want a lock timeout that says nothing was changed", err)
	}
	_ = app.Rollback(context.Background())
	if got := e.digest(); got != want {
		t.Fatal("a complete that ran out of time changed something")
	}
	e.versionsServe("public_blocked")
	e.rollback()
	e.start("blocked", yaml)
	e.complete()
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_class WHERE relname LIKE '_online%'")
	e.expectRows(e.db, []string{"U1@X.IO|n1"}, "SELECT email, full_name FROM users WHERE id = 1")
}

// TestFailingDown: a sql operation whose down fails. rollback fails and
// changes nothing; complete still works.
func TestFailingDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	e.start("bad_down", `
operations:
  - sql: { up: "CREATE TABLE extra (id int)", down: "DROP TABLE no_such_table" }
`)
	want := e.digest()
	if _, err := e.engine().Rollback(context.Background()); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("rollback with a failing down: %v, want an error that says nothing was changed", err)
	}
	if got := e.digest(); got != want {
		t.Fatal("a failed rollback changed something")
	}
	e.complete()
	e.expectRows(e.db, []string{"extra"}, "SELECT relname FROM pg_class WHERE relname = 'extra' AND relkind = 'r'")
}

// TestIrreversibleSQL: a sql operation without down is marked in the plan,
// and rollback says what it left in place.
func TestIrreversibleSQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	const yaml = `
operations:
  - sql: { up: "CREATE TABLE extra (id int)" }
`
	plan, err := e.engine().Plan(context.Background(), parse(t, "no_down", yaml))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "IRREVERSIBLE") {
		t.Fatalf("plan does not say the sql cannot be undone:\n%s", plan)
	}
	e.start("no_down", yaml)
	res, err := e.engine().Rollback(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.LeftInPlace) != 1 || !strings.Contains(res.LeftInPlace[0], "has no down") {
		t.Fatalf("rollback result: %+v, want what it left in place", res)
	}
	e.expectRows(e.db, []string{"extra"}, "SELECT relname FROM pg_class WHERE relname = 'extra' AND relkind = 'r'")
}

// TestAfterCommitFails: what runs after the contract's commit (dropping a
// dropped index concurrently) fails; the migration is complete, and the
// next command finishes the drop.
func TestAfterCommitFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows, "CREATE INDEX users_score_idx ON users (score)")
	e.start("drop_ix", `
operations:
  - drop_index: { name: users_score_idx }
`)
	eng := e.engine(func(c *phases.Config) {
		c.FailAt = func(what string, i int, stmt string) error {
			if what == "after" {
				return errInjected
			}
			return nil
		}
	})
	if _, err := eng.Complete(context.Background()); !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "is complete") {
		t.Fatalf("complete with its after-commit drop failing: %v", err)
	}
	e.expectRows(e.db, []string{"complete"}, "SELECT phase FROM online.migrations WHERE name = 'drop_ix'")
	e.expectRows(e.db, []string{"1"}, "SELECT count(*) FROM pg_class WHERE relname LIKE '_online_drop_%'")
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_class WHERE relname = 'users_score_idx'")
	res, err := e.engine().Complete(context.Background())
	if err != nil || res.Migration != "drop_ix" {
		t.Fatalf("complete again: %v, %+v", err, res)
	}
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_class WHERE relname LIKE '_online_drop_%'")
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM online.pending")
}

// TestMovesNeverStuck: the four moves of data between tables (issue 26),
// each through the lifecycle harness: complete and rollback fail at every
// statement of their transaction in turn, change nothing, and leave both
// versions serving; then the other command (or the same) gets out.
func TestMovesNeverStuck(t *testing.T) {
	t.Parallel()
	for _, m := range lifecycletest.Moves() {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			lifecycletest.Run(t, m.Case)
		})
	}
}
