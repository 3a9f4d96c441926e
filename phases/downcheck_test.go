package phases_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

// A rollback whose data down cannot run on one row (a duplicate key on a
// unique index that the old version's insert causes; a division by zero)
// is refused before any change, naming the row: the migration stays
// published with both versions live, and complete still works. rollback
// --force reaches "no migration in progress" and lists what it left: the
// values the operation set.
func TestRollbackDownFailsOnARow(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup []string
		yaml  string
		// during runs with the migration published, on the old version.
		during  func(e *env)
		row     string // the failing row's key as the error names it
		reason  string
		restore string // the rows as they were before start, after --force: what was not set back differs
	}{
		{
			name: "duplicate key",
			setup: []string{`CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL UNIQUE)`,
				`INSERT INTO accounts SELECT g, 'U' || g || '@X' FROM generate_series(1, 20) g`},
			yaml: `operations:
  - update_rows: { table: accounts, set: { email: "lower(email)" }, down: { email: "upper(email)" } }
`,
			during: func(e *env) {
				e.exec(e.version("public"), `INSERT INTO accounts VALUES (21, 'U7@X')`)
			},
			row:    "(7) and (21)",
			reason: "unique index",
		},
		{
			name: "division by zero",
			setup: []string{`CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)`,
				`INSERT INTO counters SELECT g, g FROM generate_series(1, 20) g`},
			yaml: `operations:
  - update_rows: { table: counters, set: { n: "n + 5" }, down: { n: "n - 5 + 0 * (1 / (n - 10))" } }
`,
			row:    "(5)",
			reason: "division by zero",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, then := range []string{"complete", "rollback --force"} {
				t.Run(then, func(t *testing.T) {
					t.Parallel()
					e := newEnv(t, tc.setup...)
					e.start("m", "version_schema: m\n"+tc.yaml)
					if tc.during != nil {
						tc.during(e)
					}
					before := e.digest()
					_, err := e.engine().Rollback(context.Background())
					var de *phases.DownError
					if !errors.As(err, &de) || !errors.Is(err, phases.ErrDownFails) {
						t.Fatalf("rollback with a down that fails on row %s: %v, want a DownError", tc.row, err)
					}
					for _, w := range []string{"row " + tc.row, tc.reason, "nothing was changed", "rollback --force"} {
						if !strings.Contains(err.Error(), w) {
							t.Fatalf("the refusal does not say %q:\n%s", w, err)
						}
					}
					if got := e.digest(); got != before {
						t.Fatalf("the refused rollback changed something:\n got %s\nwant %s", got, before)
					}
					e.versionsServe("public_m")
					if then == "complete" {
						e.FailEachStep("complete", func(eng *phases.Engine) (*phases.Result, error) { return eng.Complete(context.Background()) })
						e.complete()
						return
					}
					res, err := e.engine(func(c *phases.Config) { c.ForceRollback = true }).Rollback(context.Background())
					if err != nil {
						t.Fatalf("rollback --force: %s", pg.Explain(err))
					}
					if len(res.LeftInPlace) != 1 || !strings.Contains(res.LeftInPlace[0], "row "+tc.row) || !strings.Contains(res.LeftInPlace[0], "keeps the value") {
						t.Fatalf("rollback --force left %q, want the operation's values named with row %s", res.LeftInPlace, tc.row)
					}
					if e.schemaExists("public_m") {
						t.Fatal("rollback --force left version schema public_m")
					}
					e.expectRows(e.db, []string{"0"}, `SELECT count(*) FROM online.migrations WHERE phase <> 'complete'`)
				})
			}
		})
	}
}

// rollback --force past a sql operation whose down fails: the rest is
// rolled back, the migration is no longer in progress, and the result
// names the undo it skipped.
func TestForceRollbackPastFailingSQLDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	e.start("bad_down", "version_schema: bad_down\n"+`operations:
  - sql: { up: "CREATE TABLE extra (id int)", down: "DROP TABLE no_such_table" }
  - sql: { up: "CREATE TABLE extra2 (id int)", down: "DROP TABLE extra2" }
`)
	res, err := e.engine(func(c *phases.Config) { c.ForceRollback = true }).Rollback(context.Background())
	if err != nil {
		t.Fatalf("rollback --force: %s", pg.Explain(err))
	}
	if len(res.LeftInPlace) != 1 || !strings.Contains(res.LeftInPlace[0], "no_such_table") || !strings.Contains(res.LeftInPlace[0], "skipped") {
		t.Fatalf("rollback --force left %q, want the failing undo named", res.LeftInPlace)
	}
	e.expectRows(e.db, []string{"extra"}, "SELECT relname FROM pg_class WHERE relname IN ('extra', 'extra2') ORDER BY 1")
	e.expectRows(e.db, []string{"0"}, `SELECT count(*) FROM online.migrations`)
	if e.schemaExists("public_bad_down") {
		t.Fatal("rollback --force left the version schema")
	}
}
