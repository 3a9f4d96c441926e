package phases_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"path/filepath"
	"sort"
	"testing"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

// TestExamples applies every file of examples/ in order. Each migration is
// started, read and written through both versions, rolled back (the schema
// must come back exactly), started again and completed.
func TestExamples(t *testing.T) {
	t.Parallel()
	// Migration files only: examples/app is the example application.
	var files []string
	for _, pat := range []string{"../examples/*.yaml", "../examples/*.yml", "../examples/*.json"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	sort.Strings(files)
	e := newEnv(t)
	old := "public"
	for _, f := range files {
		m, err := operations.ParseFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		before := e.dump()
		// Each file's engines and application sessions end with it, not
		// at the test's end: a dozen files' worth held open at once were
		// 60 connections of one test, past its share of the server.
		start := func() *phases.Result {
			eng := e.engine()
			defer eng.Close(ctx())
			res, err := eng.Start(ctx(), m)
			if err != nil {
				t.Fatalf("start %s: %v", f, err)
			}
			return res
		}
		serve := func(vs string) {
			oldConn, newConn := e.version(old), e.version(vs)
			defer oldConn.Close(ctx())
			defer newConn.Close(ctx())
			checkVersionsServe(e, oldConn, newConn)
		}
		res := start()
		serve(res.VersionSchema)
		e.rollback()
		if after := e.dump(); after != before {
			t.Fatalf("%s: rollback changed the schema:\n%s", f, after)
		}
		res = start()
		serve(res.VersionSchema)
		e.complete()
		old = res.VersionSchema
		if data, _ := os.ReadFile(f); len(data) == 0 {
			t.Fatalf("%s is empty", f)
		}
	}
}

// checkVersionsServe reads every view of each version and writes through
// it (an UPDATE of every row that sets a column to itself, which PostgreSQL
// only accepts on an updatable view), so both versions must serve.
func checkVersionsServe(e *env, conns ...*pgx.Conn) {
	e.t.Helper()
	for _, c := range conns {
		var schemaName string
		if err := c.QueryRow(ctx(), "SELECT (current_schemas(false))[1]").Scan(&schemaName); err != nil {
			e.t.Fatal(err)
		}
		rows := e.rows(c, `SELECT c.relname, (SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum DESC LIMIT 1)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') ORDER BY 1`, schemaName)
		for _, r := range rows {
			rel, col, _ := strings.Cut(r, "|")
			q := pg.Ident(schemaName, rel)
			e.exec(c, "SELECT * FROM "+q+" LIMIT 5")
			e.exec(c, fmt.Sprintf("UPDATE %s SET %s = %s", q, pg.Ident(col), pg.Ident(col)))
		}
	}
}
