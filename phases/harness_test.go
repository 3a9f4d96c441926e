package phases_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
	"github.com/onlinepg/online/phases"
)

// The harness is internal/lifecycletest's, where each operation's lifecycle
// cases (operations/<name>_lifecycle_test.go) use it too. env gives its
// Env the short names the tests of this package (and the benchmarks) use.
type env struct {
	*lifecycletest.Env
	t   testing.TB
	url string
	db  *pgx.Conn // plain connection, search_path public
}

func wrap(le *lifecycletest.Env) *env { return &env{Env: le, t: le.T, url: le.URL, db: le.DB} }

func newEnv(t testing.TB, setup ...string) *env { return wrap(lifecycletest.NewEnv(t, setup...)) }

// envOn is an env on a database that exists already (url), for t.
func envOn(t testing.TB, url string, db *pgx.Conn) *env {
	return wrap(&lifecycletest.Env{T: t, URL: url, DB: db})
}

var parse = lifecycletest.Parse

const (
	usersTable = lifecycletest.UsersTable
	usersRows  = lifecycletest.UsersRows
)

var errInjected = lifecycletest.ErrInjected

func (e *env) engine(cfg ...func(*phases.Config)) *phases.Engine {
	e.t.Helper()
	return e.Engine(cfg...)
}
func (e *env) start(name, yaml string) *phases.Result       { e.t.Helper(); return e.Start(name, yaml) }
func (e *env) complete()                                    { e.t.Helper(); e.Complete() }
func (e *env) rollback()                                    { e.t.Helper(); e.Rollback() }
func (e *env) version(searchPath string) *pgx.Conn          { e.t.Helper(); return e.Version(searchPath) }
func (e *env) exec(conn *pgx.Conn, sql string, args ...any) { e.t.Helper(); e.Exec(conn, sql, args...) }
func (e *env) rows(conn *pgx.Conn, sql string, args ...any) []string {
	e.t.Helper()
	return e.Rows(conn, sql, args...)
}
func (e *env) expectRows(conn *pgx.Conn, want []string, sql string, args ...any) {
	e.t.Helper()
	e.ExpectRows(conn, want, sql, args...)
}
func (e *env) expectErr(conn *pgx.Conn, contains, sql string, args ...any) {
	e.t.Helper()
	e.ExpectErr(conn, contains, sql, args...)
}
func (e *env) dump() string                       { e.t.Helper(); return e.Dump() }
func (e *env) schemaExists(name string) bool      { e.t.Helper(); return e.SchemaExists(name) }
func (e *env) digest() string                     { e.t.Helper(); return e.Digest() }
func (e *env) versionsServe(versionSchema string) { e.t.Helper(); e.VersionsServe(versionSchema) }

// lifecycle is a lifecycletest.Case whose hooks take this package's env:
// the cases here combine operations or exercise one technique (rewrites,
// partitions, key columns); each operation's own cases are beside it in
// operations.
type lifecycle struct {
	name   string
	setup  []string
	yaml   string
	during func(e *env, old, new *pgx.Conn, exclusive bool)
	after  func(e *env, new *pgx.Conn)
}

func runLifecycle(t *testing.T, tc lifecycle) {
	c := lifecycletest.Case{Name: tc.name, Setup: tc.setup, YAML: tc.yaml}
	if tc.during != nil {
		c.During = func(le *lifecycletest.Env, old, nw *pgx.Conn, exclusive bool) {
			tc.during(wrap(le), old, nw, exclusive)
		}
	}
	if tc.after != nil {
		c.After = func(le *lifecycletest.Env, nw *pgx.Conn) { tc.after(wrap(le), nw) }
	}
	lifecycletest.Run(t, c)
}
