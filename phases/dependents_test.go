package phases_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

// What users make in a version schema (an application's table, created
// with search_path set to the version) or on one of its views (a view in
// public over a version's view) is never dropped behind their back:
// rollback, and the complete of the next migration, refuse before any
// change (digest before and after), naming each object with its kind and
// owner; with --drop-dependents they drop exactly those and say so.
func TestVersionSchemaDependents(t *testing.T) {
	t.Parallel()
	const addTier = `operations:
  - add_column:
      table: users
      column: {name: tier, type: text, nullable: true}
`
	const addRank = `operations:
  - add_column:
      table: users
      column: {name: rank, type: int, nullable: true}
`
	// userObjects makes, in and on version schema vs, what an
	// application and a DBA would.
	userObjects := func(e *env, vs string) {
		app := e.version(vs)
		e.exec(app, `CREATE TABLE app_sessions (id serial PRIMARY KEY, token text NOT NULL)`)
		e.exec(app, `INSERT INTO app_sessions (token) VALUES ('a'), ('b'), ('c')`)
		e.exec(e.db, `CREATE VIEW public.report AS SELECT id, email FROM `+pg.Ident(vs, "users"))
		// A column of the version view's row type: the column goes,
		// its table stays.
		e.exec(e.db, `CREATE TABLE public.snapshots (id int, u `+pg.Ident(vs, "users")+`)`)
	}
	wantListed := []string{"table public_m_a.app_sessions (owner postgres)", "view public.report (owner postgres)", "table column public.snapshots.u (owner postgres)"}

	cases := []struct {
		name string
		// prepare leaves a migration in progress whose command (run)
		// drops version schema public_m_a.
		prepare func(e *env)
		run     func(eng *phases.Engine) (*phases.Result, error)
		command string
	}{
		{
			name: "rollback",
			prepare: func(e *env) {
				e.start("m_a", "version_schema: m_a\n"+addTier)
				userObjects(e, "public_m_a")
			},
			run:     func(eng *phases.Engine) (*phases.Result, error) { return eng.Rollback(context.Background()) },
			command: "rollback",
		},
		{
			name: "complete of the next migration",
			prepare: func(e *env) {
				e.start("m_a", "version_schema: m_a\n"+addTier)
				e.complete()
				userObjects(e, "public_m_a")
				e.start("m_b", "version_schema: m_b\n"+addRank)
			},
			run:     func(eng *phases.Engine) (*phases.Result, error) { return eng.Complete(context.Background()) },
			command: "complete",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, usersTable, usersRows)
			tc.prepare(e)
			before := e.digest()

			_, err := tc.run(e.engine())
			var de *phases.DependentsError
			if !errors.As(err, &de) || !errors.Is(err, phases.ErrDependents) {
				t.Fatalf("%s with objects of others in and on public_m_a: %v, want a DependentsError", tc.command, err)
			}
			for _, w := range append(wantListed, "nothing was changed", "--drop-dependents") {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("the refusal does not say %q:\n%s", w, err)
				}
			}
			if got := e.digest(); got != before {
				t.Fatalf("the refused %s changed something:\n got %s\nwant %s", tc.command, got, before)
			}
			e.expectRows(e.db, []string{"3"}, `SELECT count(*) FROM public_m_a.app_sessions`)
			e.expectRows(e.db, []string{"50"}, `SELECT count(*) FROM public.report`)

			// Every statement of the command failing in turn, objects of
			// others included, changes nothing.
			e.FailEachStepWith(tc.command, func(c *phases.Config) { c.DropDependents = true }, tc.run)
			res, err := tc.run(e.engine(func(c *phases.Config) { c.DropDependents = true }))
			if err != nil {
				t.Fatalf("%s --drop-dependents: %s", tc.command, pg.Explain(err))
			}
			var listed []string
			for _, o := range res.DroppedDependents {
				listed = append(listed, o.String())
			}
			for _, w := range wantListed {
				if !strings.Contains(strings.Join(listed, "\n"), w) {
					t.Fatalf("%s --drop-dependents reports %q, not %q", tc.command, listed, w)
				}
			}
			if e.schemaExists("public_m_a") {
				t.Fatalf("%s --drop-dependents left public_m_a", tc.command)
			}
			e.expectRows(e.db, []string{"0"}, `SELECT count(*) FROM pg_class WHERE relname IN ('report', 'app_sessions')`)
			e.expectRows(e.db, []string{"id"}, `SELECT attname FROM pg_attribute WHERE attrelid = 'public.snapshots'::regclass AND attnum > 0 AND NOT attisdropped`)
			e.expectRows(e.db, []string{"50"}, `SELECT count(*) FROM users`)
		})
	}
}

// Objects of others that do not touch the version schema are no concern:
// a view over the table itself, and a table in another schema, survive a
// rollback that goes through without a flag.
func TestVersionSchemaDropLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows, `CREATE VIEW public.emails AS SELECT email FROM users`, `CREATE SCHEMA app`, `CREATE TABLE app.t (id int)`)
	e.start("m_a", "version_schema: m_a\noperations:\n  - add_column:\n      table: users\n      column: {name: tier, type: text, nullable: true}\n")
	e.rollback()
	if e.schemaExists("public_m_a") {
		t.Fatal("rollback left public_m_a")
	}
	e.expectRows(e.db, []string{"50|0"}, `SELECT (SELECT count(*) FROM public.emails), (SELECT count(*) FROM app.t)`)
}

// complete's DROP INDEX CONCURRENTLY after the commit waits for a long
// reader no longer than --lock-retry-deadline: complete succeeds, says
// what it left queued, and the next command drops the index once the
// reader is gone.
func TestCompleteDropIndexBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows, `CREATE INDEX users_name_idx ON users (name)`)
	e.start("drop_idx", "version_schema: drop_idx\noperations:\n  - drop_index: { name: users_name_idx }\n")
	reader := e.version("public")
	tx, err := reader.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(context.Background(), `SELECT count(*) FROM users`); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	res, err := e.engine(func(c *phases.Config) { c.LockRetryDeadline = 2 * time.Second }).Complete(context.Background())
	took := time.Since(began)
	if err != nil {
		t.Fatalf("complete with a reader holding the table: %s", pg.Explain(err))
	}
	if took > 15*time.Second {
		t.Fatalf("complete took %s with --lock-retry-deadline 2s", took)
	}
	if len(res.Queued) != 1 || !strings.Contains(res.Queued[0], "DROP INDEX CONCURRENTLY") {
		t.Fatalf("complete left queued %q, want the DROP INDEX CONCURRENTLY", res.Queued)
	}
	e.expectRows(e.db, []string{"1"}, `SELECT count(*) FROM online.pending`)
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The next command runs what is queued first.
	if _, err := e.engine().Rollback(context.Background()); !errors.Is(err, phases.ErrNoMigration) {
		t.Fatalf("rollback with nothing in progress: %v", err)
	}
	e.expectRows(e.db, []string{"0"}, `SELECT count(*) FROM online.pending`)
	e.expectRows(e.db, []string{"0"}, `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname = 'users' AND NOT i.indisprimary`)
}
