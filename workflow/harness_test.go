package workflow_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/workflow"
)

// The harness is internal/lifecycletest's, as phases' tests use it: env
// gives its Env short names, and engines of the workflow.
type env struct {
	*lifecycletest.Env
	t   testing.TB
	url string
	db  *pgx.Conn // plain connection, search_path public
}

func newEnv(t testing.TB, setup ...string) *env {
	le := lifecycletest.NewEnv(t, setup...)
	return &env{Env: le, t: le.T, url: le.URL, db: le.DB}
}

func (e *env) engine(cfg ...func(*phases.Config)) *workflow.Engine {
	e.t.Helper()
	return workflow.New(e.Engine(cfg...))
}
func (e *env) complete()                                    { e.t.Helper(); e.Complete() }
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
func (e *env) schemaExists(name string) bool { e.t.Helper(); return e.SchemaExists(name) }

func ctx() context.Context { return context.Background() }

func mustParse(t *testing.T, file string, data []byte) *operations.Migration {
	t.Helper()
	m, err := operations.Parse(file, data)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return m
}
