// Package lifecycletest is the end-to-end harness of online's tests: a
// database per test (Env) with an engine and a connection on each version,
// and the lifecycle every operation is held to (Case, Run): start, reads and
// writes through both versions, complete and rollback failing at each of
// their statements without changing anything (FailEachStep, Digest), the
// rollback restoring the schema exactly, start again, complete, with the
// case's assertions on data and catalog after each step.
//
// The operations package runs each operation's cases beside it
// (operations/<name>_lifecycle_test.go); phases runs those that combine
// operations or exercise a technique. It fails statements through
// phases.Config.FailAt. It needs DATABASE_URL (see internal/pgtest).
package lifecycletest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

// Env is one test's database with an engine and helpers to reach each version.
type Env struct {
	T   testing.TB
	URL string
	DB  *pgx.Conn // plain connection, search_path public
}

// NewEnv makes a database of its own for t and runs setup in it.
func NewEnv(t testing.TB, setup ...string) *Env {
	t.Helper()
	url := pgtest.NewDB(t)
	e := &Env{T: t, URL: url, DB: pgtest.Connect(t, url)}
	pgtest.Exec(t, e.DB, setup...)
	return e
}

// Engine opens an engine on e's database (lock timeout 500ms, retries for
// 20s), changed by cfg, and closes it when the test ends.
func (e *Env) Engine(cfg ...func(*phases.Config)) *phases.Engine {
	e.T.Helper()
	c := phases.Config{URL: e.URL, LockTimeout: 500 * time.Millisecond, LockRetryDeadline: 20 * time.Second}
	for _, f := range cfg {
		f(&c)
	}
	eng, err := phases.Open(context.Background(), c)
	if err != nil {
		e.T.Fatalf("open engine: %v", err)
	}
	e.T.Cleanup(func() { _ = eng.Close(context.Background()) })
	return eng
}

// Parse parses yaml as the migration file name.yaml, or fails t.
func Parse(t testing.TB, name, yaml string) *operations.Migration {
	t.Helper()
	m, err := operations.Parse(name+".yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return m
}

// once runs one command on an engine of its own and closes it at once: a
// test runs many commands, and engines left open until its end would add
// up, over the tests running in parallel in several packages, past a
// default max_connections of 100.
func (e *Env) once(run func(*phases.Engine) (*phases.Result, error)) (*phases.Result, error) {
	eng := e.Engine()
	defer eng.Close(context.Background()) // closing twice (again at cleanup) is harmless
	return run(eng)
}

// Start starts the migration with a new engine, or fails the test.
func (e *Env) Start(yamlName, yaml string) *phases.Result {
	e.T.Helper()
	m := Parse(e.T, yamlName, yaml)
	res, err := e.once(func(eng *phases.Engine) (*phases.Result, error) { return eng.Start(context.Background(), m) })
	if err != nil {
		e.T.Fatalf("start %s: %s", yamlName, pg.Explain(err))
	}
	return res
}

// Complete completes the migration in progress, or fails the test.
func (e *Env) Complete() {
	e.T.Helper()
	if _, err := e.once(func(eng *phases.Engine) (*phases.Result, error) { return eng.Complete(context.Background()) }); err != nil {
		e.T.Fatalf("complete: %s", pg.Explain(err))
	}
}

// Rollback rolls the migration in progress back, or fails the test.
func (e *Env) Rollback() {
	e.T.Helper()
	if _, err := e.once(func(eng *phases.Engine) (*phases.Result, error) { return eng.Rollback(context.Background()) }); err != nil {
		e.T.Fatalf("rollback: %s", pg.Explain(err))
	}
}

// version opens a connection whose search_path (set in the startup packet,
// as an application would) is the given schema list.
func (e *Env) Version(searchPath string) *pgx.Conn {
	e.T.Helper()
	conn, err := pgtest.ConnectOptions(context.Background(), e.URL, pg.Options{SearchPath: searchPath, ApplicationName: "online-test-app"})
	if err != nil {
		e.T.Fatalf("connect with search_path %s: %v", searchPath, err)
	}
	e.T.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs sql on conn, or fails the test.
func (e *Env) Exec(conn *pgx.Conn, sql string, args ...any) {
	e.T.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		e.T.Fatalf("%s: %s", sql, pg.Explain(err))
	}
}

// Rows returns the rows of sql on conn, each as its columns joined by |.
func (e *Env) Rows(conn *pgx.Conn, sql string, args ...any) []string {
	e.T.Helper()
	return pgtest.QueryStrings(e.T, conn, sql, args...)
}

// ExpectRows fails the test unless sql on conn returns want.
func (e *Env) ExpectRows(conn *pgx.Conn, want []string, sql string, args ...any) {
	e.T.Helper()
	got := e.Rows(conn, sql, args...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		e.T.Fatalf("%s\n got: %q\nwant: %q", sql, got, want)
	}
}

// ExpectErr fails the test unless sql on conn fails with an error
// containing contains.
func (e *Env) ExpectErr(conn *pgx.Conn, contains, sql string, args ...any) {
	e.T.Helper()
	_, err := conn.Exec(context.Background(), sql, args...)
	if err == nil || !strings.Contains(err.Error(), contains) {
		e.T.Fatalf("%s: want an error containing %q, got %v", sql, contains, err)
	}
}

// Dump is pg_dump --schema-only of the public schema.
func (e *Env) Dump() string {
	e.T.Helper()
	return pgtest.DumpSchema(e.T, e.URL, "public")
}

// SchemaExists reports whether the schema name exists.
func (e *Env) SchemaExists(name string) bool {
	e.T.Helper()
	var ok bool
	if err := e.DB.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&ok); err != nil {
		e.T.Fatal(err)
	}
	return ok
}

// Case is one operation's end-to-end check: start, then reads and
// writes through both versions at once; rollback, which must leave the
// schema exactly as before; start again; complete.
type Case struct {
	Name  string
	Setup []string // run after UsersTable and UsersRows
	YAML  string
	// During runs after each start with a connection on each version.
	// exclusive is false for a search_path that lists later schemas, where
	// a table the new version hides can still be found.
	During func(e *Env, old, new *pgx.Conn, exclusive bool)
	// After runs after complete, with a connection on the new version.
	After func(e *Env, new *pgx.Conn)
	// UndoesDataFirst is for an operation whose rollback computes rows
	// back before its transaction (update_rows with down): a rollback that
	// fails has then changed the rows already, and says so. Round 2 lets
	// one rollback fail after that undo, and from there every failure at
	// a later statement must change nothing, as for any other operation;
	// rollback, the one way out left, must then restore the schema, and
	// the case starts once more before it completes.
	UndoesDataFirst bool
}

// UsersTable and UsersRows make the table every case starts from: 50 users.
const UsersTable = `CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text, legacy text, score int NOT NULL DEFAULT 0)`
const UsersRows = `INSERT INTO users (email, name, legacy) SELECT 'u' || g || '@x.io', 'n' || g, 'l' || g FROM generate_series(1, 50) g`

// Run runs one case: two rounds of start and both versions in use. In
// the first, complete fails at each of its statements in turn and
// rollback must then restore the schema exactly (pg_dump); in the
// second, rollback fails at each statement in turn, and complete ends it.
func Run(t *testing.T, tc Case) {
	e := NewEnv(t, append([]string{UsersTable, UsersRows}, tc.Setup...)...)
	before := e.Dump()
	m := Parse(t, tc.Name, tc.YAML)
	vs := "public_" + m.VersionSchema

	for round := 1; round <= 2; round++ {
		res := e.Start(tc.Name, tc.YAML)
		if res.VersionSchema != vs {
			t.Fatalf("version schema %q, want %q", res.VersionSchema, vs)
		}
		if !e.SchemaExists(vs) {
			t.Fatalf("round %d: version schema %s not published", round, vs)
		}
		old, nw := e.Version("public"), e.Version(vs)
		// An application may list more schemas after its version.
		multi := e.Version(vs + ", public")
		if tc.During != nil {
			tc.During(e, old, nw, true)
			tc.During(e, old, multi, false)
		}
		// No state nobody can leave: complete (round 1) or rollback
		// (round 2) fails at each of its statements in turn and changes
		// nothing; both versions still serve, and then the other command,
		// or the same one, succeeds.
		if round == 1 {
			e.FailEachStep("complete", func(eng *phases.Engine) (*phases.Result, error) { return eng.Complete(context.Background()) })
		} else {
			if tc.UndoesDataFirst {
				e.failRollbackAfterUndo()
			}
			e.FailEachStep("rollback", func(eng *phases.Engine) (*phases.Result, error) { return eng.Rollback(context.Background()) })
		}
		e.VersionsServe(vs)
		// The round's application sessions end here, not at the test's
		// end: see once.
		for _, c := range []*pgx.Conn{old, nw, multi} {
			c.Close(context.Background())
		}
		if round == 1 {
			e.Rollback()
			if e.SchemaExists(vs) {
				t.Fatalf("rollback left version schema %s", vs)
			}
			if after := e.Dump(); after != before {
				t.Fatalf("rollback did not restore the schema:\n--- before\n%s\n--- after\n%s", before, after)
			}
		}
	}
	if tc.UndoesDataFirst {
		// A rollback that failed after the undo leaves rollback as the
		// one way out (complete is refused, see README): it must still
		// work and restore the schema; then the case starts once more.
		e.Rollback()
		if after := e.Dump(); after != before {
			t.Fatalf("rollback after a failed one did not restore the schema:\n--- before\n%s\n--- after\n%s", before, after)
		}
		e.Start(tc.Name, tc.YAML)
	}
	e.Complete()
	if tc.After != nil {
		tc.After(e, e.Version(vs))
	}
}

// failRollbackAfterUndo runs a rollback that fails at its transaction's
// first statement, after the data migrations' undo has run.
func (e *Env) failRollbackAfterUndo() {
	e.T.Helper()
	eng := e.Engine(func(c *phases.Config) {
		c.FailAt = func(what string, _ int, _ string) error {
			if what == "rollback" {
				return ErrInjected
			}
			return nil
		}
	})
	defer eng.Close(context.Background())
	if _, err := eng.Rollback(context.Background()); !errors.Is(err, ErrInjected) {
		e.T.Fatalf("rollback with a failure injected after the undo: %v, want the injected failure", err)
	}
}

// RunAll runs each case as a parallel subtest named after it.
func RunAll(t *testing.T, cases []Case) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			Run(t, tc)
		})
	}
}

// ErrInjected is the failure FailEachStep makes a statement return.
var ErrInjected = errors.New("injected failure")

// Digest summarises everything a failed command must leave as it was: the
// catalog of every schema but the system's (columns, constraints, indexes
// with their names, triggers, functions, types, views), online's state
// rows, and every row of every table outside the system's and online's
// schemas (the migrated schema's, and those an application made elsewhere,
// in a version schema included).
func (e *Env) Digest() string {
	e.T.Helper()
	const catalog = `SELECT md5(coalesce(string_agg(x, E'\n' ORDER BY x), '')) FROM (
	SELECT 'ns ' || nspname AS x FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'col ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
	FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE n.nspname !~ '^(pg_|information_schema)' AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
	FROM pg_constraint WHERE connamespace IN (SELECT oid FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema)')
	UNION ALL SELECT 'idx ' || pg_get_indexdef(indexrelid) || ' ' || indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'trg ' || tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal
	UNION ALL SELECT 'fn ' || p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'type ' || t.oid::regtype::text || coalesce(' ' || (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '')
	FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname !~ '^(pg_|information_schema)' AND t.typtype IN ('e', 'd', 'c')
	UNION ALL SELECT 'view ' || c.oid::regclass::text || ' ' || pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'v' AND n.nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'state ' || name || ' ' || phase || ' ' || steps_done || ' ' || contract_done FROM online.migrations
	UNION ALL SELECT 'pending ' || migration || ' ' || seq || ' ' || sql FROM online.pending
) s`
	var out strings.Builder
	var sum string
	if err := e.DB.QueryRow(context.Background(), catalog).Scan(&sum); err != nil {
		e.T.Fatalf("catalog digest: %v", err)
	}
	out.WriteString(sum)
	for _, tbl := range e.Rows(e.DB, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^(pg_|information_schema$|online$)' ORDER BY 1`) {
		var d string
		if err := e.DB.QueryRow(context.Background(), fmt.Sprintf("SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM %s t", tbl)).Scan(&d); err != nil {
			e.T.Fatalf("data digest of %s: %v", tbl, err)
		}
		out.WriteString(" " + tbl + "=" + d)
	}
	return out.String()
}

// The property that no migration can be stuck: for every case (Run does
// this for each), complete and rollback are made to fail at each of their
// statements in turn. After every failure nothing may have changed
// (catalog, state and data digests), the migration stays published, and
// then both complete and rollback must still succeed.
//
// FailEachStep makes command (complete or rollback, run by run) fail at each
// of its statements in turn, and at the state update that ends its
// transaction, asserting after each that nothing changed. It returns how
// many failure points it tried.
func (e *Env) FailEachStep(what string, run func(*phases.Engine) (*phases.Result, error)) int {
	e.T.Helper()
	return e.FailEachStepWith(what, nil, run)
}

// FailEachStepWith is FailEachStep with the engine's configuration changed
// by cfg too (such as DropDependents).
func (e *Env) FailEachStepWith(what string, cfg func(*phases.Config), run func(*phases.Engine) (*phases.Result, error)) int {
	e.T.Helper()
	want := e.Digest()
	for k := 0; ; k++ {
		last := false
		eng := e.Engine(func(c *phases.Config) {
			if cfg != nil {
				cfg(c)
			}
			c.FailAt = func(w string, i int, stmt string) error {
				if w != what {
					return nil
				}
				if stmt == "record" {
					last = true
					return ErrInjected
				}
				if i == k {
					return ErrInjected
				}
				return nil
			}
		})
		_, err := run(eng)
		if !errors.Is(err, ErrInjected) {
			e.T.Fatalf("%s with a failure injected at statement %d: %v, want the injected failure", what, k, err)
		}
		if !strings.Contains(err.Error(), "nothing was changed") {
			e.T.Fatalf("%s failed at statement %d: the error does not say that nothing was changed: %s", what, k, pg.Explain(err))
		}
		_ = eng.Close(context.Background())
		if got := e.Digest(); got != want {
			e.T.Fatalf("%s failed at statement %d and changed something:\n got %s\nwant %s", what, k, got, want)
		}
		if last {
			return k + 1
		}
	}
}

// VersionsServe reads every view of version schema vs and its table
// through the old version: after a failed complete or rollback both must
// still answer, with the same rows.
func (e *Env) VersionsServe(vs string) {
	e.T.Helper()
	for _, v := range e.Rows(e.DB, `SELECT quote_ident(c.relname) || '|' || d.refobjid::regclass::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_rewrite r ON r.ev_class = c.oid JOIN pg_depend d ON d.objid = r.oid AND d.refobjid <> c.oid AND d.deptype = 'n'
JOIN pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p')
WHERE n.nspname = $1 AND c.relkind = 'v' GROUP BY 1 ORDER BY 1`, vs) {
		view, table, _ := strings.Cut(v, "|")
		n := e.Rows(e.DB, fmt.Sprintf("SELECT count(*) FROM %s.%s", pg.Ident(vs), view))
		m := e.Rows(e.DB, fmt.Sprintf("SELECT count(*) FROM %s", table))
		if strings.Join(n, "") != strings.Join(m, "") {
			e.T.Fatalf("view %s.%s sees %v rows, its table %s %v", vs, view, n, table, m)
		}
	}
}
