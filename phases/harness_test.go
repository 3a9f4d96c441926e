package phases_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

// env is one test's database with an engine and helpers to reach each version.
type env struct {
	t   testing.TB
	url string
	db  *pgx.Conn // plain connection, search_path public
}

func newEnv(t testing.TB, setup ...string) *env {
	t.Helper()
	url := pgtest.NewDB(t)
	e := &env{t: t, url: url, db: pgtest.Connect(t, url)}
	pgtest.Exec(t, e.db, setup...)
	return e
}

func (e *env) engine(cfg ...func(*phases.Config)) *phases.Engine {
	e.t.Helper()
	c := phases.Config{URL: e.url, LockTimeout: 500 * time.Millisecond, LockRetryDeadline: 20 * time.Second}
	for _, f := range cfg {
		f(&c)
	}
	eng, err := phases.Open(context.Background(), c)
	if err != nil {
		e.t.Fatalf("open engine: %v", err)
	}
	e.t.Cleanup(func() { _ = eng.Close(context.Background()) })
	return eng
}

func parse(t testing.TB, name, yaml string) *operations.Migration {
	t.Helper()
	m, err := operations.Parse(name+".yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return m
}

func (e *env) start(yamlName, yaml string) *phases.Result {
	e.t.Helper()
	res, err := e.engine().Start(context.Background(), parse(e.t, yamlName, yaml))
	if err != nil {
		e.t.Fatalf("start %s: %s", yamlName, pg.Explain(err))
	}
	return res
}

func (e *env) complete() {
	e.t.Helper()
	if _, err := e.engine().Complete(context.Background()); err != nil {
		e.t.Fatalf("complete: %s", pg.Explain(err))
	}
}

func (e *env) rollback() {
	e.t.Helper()
	if _, err := e.engine().Rollback(context.Background()); err != nil {
		e.t.Fatalf("rollback: %s", pg.Explain(err))
	}
}

// version opens a connection whose search_path (set in the startup packet,
// as an application would) is the given schema list.
func (e *env) version(searchPath string) *pgx.Conn {
	e.t.Helper()
	conn, err := pg.Connect(context.Background(), e.url, pg.Options{SearchPath: searchPath, ApplicationName: "online-test-app"})
	if err != nil {
		e.t.Fatalf("connect with search_path %s: %v", searchPath, err)
	}
	e.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (e *env) exec(conn *pgx.Conn, sql string, args ...any) {
	e.t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %s", sql, pg.Explain(err))
	}
}

func (e *env) rows(conn *pgx.Conn, sql string, args ...any) []string {
	e.t.Helper()
	return pgtest.QueryStrings(e.t, conn, sql, args...)
}

func (e *env) expectRows(conn *pgx.Conn, want []string, sql string, args ...any) {
	e.t.Helper()
	got := e.rows(conn, sql, args...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		e.t.Fatalf("%s\n got: %q\nwant: %q", sql, got, want)
	}
}

func (e *env) expectErr(conn *pgx.Conn, contains, sql string, args ...any) {
	e.t.Helper()
	_, err := conn.Exec(context.Background(), sql, args...)
	if err == nil || !strings.Contains(err.Error(), contains) {
		e.t.Fatalf("%s: want an error containing %q, got %v", sql, contains, err)
	}
}

func (e *env) dump() string {
	e.t.Helper()
	return pgtest.DumpSchema(e.t, e.url, "public")
}

func (e *env) schemaExists(name string) bool {
	e.t.Helper()
	var ok bool
	if err := e.db.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&ok); err != nil {
		e.t.Fatal(err)
	}
	return ok
}
