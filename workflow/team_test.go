package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/onlinepg/online/appversion"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/workflow"
)

// The cases of a team's months of migrations (issue 22): whatever the team
// does, the folder stays the source of truth and migrate DIR can go on.

func teamFiles() fstest.MapFS {
	return fstest.MapFS{
		"001_users.yaml": {Data: []byte(`operations:
  - create_table:
      name: users
      columns:
        - { name: id, type: bigserial, pk: true }
        - { name: email, type: text, nullable: false }
`)},
		"002_lower.yaml": {Data: []byte("operations:\n  - add_column: { table: users, column: { name: score, type: int, nullable: true } }\n")},
		"003_nick.yaml":  {Data: []byte("operations:\n  - add_column: { table: users, column: { name: nick, type: text, nullable: true } }\n")},
	}
}

// TestTeamRevertThenMigrate: after migrate --complete, revert, complete,
// the reverted file is pending and migrate DIR applies it again (case 1);
// while and after the revert, the live version is the one the files say,
// the version of the file before it (case 3).
func TestTeamRevertThenMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	eng := env.engine()
	d := loadDir(t, teamFiles())
	if _, err := eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	env.exec(env.db, "INSERT INTO users (email, nick) VALUES ('a@x', 'a')")
	res, err := eng.Revert(ctx)
	if err != nil {
		t.Fatalf("revert: %s", pg.Explain(err))
	}
	// The version of the reverted shape is the one of the file it goes
	// back to: an application built for 002_lower is served.
	if res.VersionSchema != "public_002_lower" {
		t.Fatalf("revert publishes %q, want public_002_lower", res.VersionSchema)
	}
	env.expectRows(env.version("public_002_lower"), []string{"a@x"}, "SELECT email FROM users")
	env.complete()
	if latest, err := eng.Latest(ctx); err != nil || latest != "public_002_lower" {
		t.Fatalf("latest after the revert: %q, %v; want public_002_lower", latest, err)
	}
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_lower": "applied", "003_nick": "pending"})
	if err := (appversion.Version{Name: "002_lower"}).Check(ctx, env.db); err != nil {
		t.Fatalf("an application built for 002_lower after the revert of 003: %v", err)
	}
	// One built for 003 is told the truth: its migration was reverted.
	if err := (appversion.Version{Name: "003_nick"}).Check(ctx, env.db); err == nil || !strings.Contains(err.Error(), "reverted") || !strings.Contains(err.Error(), "online migrate") {
		t.Fatalf("an application built for 003_nick after its revert: %v", err)
	}

	// migrate agrees with status: 003 is applied again.
	mres, err := eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true})
	if err != nil {
		t.Fatalf("migrate after the revert: %s", pg.Explain(err))
	}
	if strings.Join(mres.Applied, ",") != "003_nick.yaml" || mres.Latest != "public_003_nick" {
		t.Fatalf("migrate after the revert: %+v", mres)
	}
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_lower": "applied", "003_nick": "applied"})
	env.expectRows(env.version("public_003_nick"), []string{"a@x|NULL"}, "SELECT email, nick FROM users")

	// And again: revert, migrate; the history keeps every event.
	if _, err := eng.Revert(ctx); err != nil {
		t.Fatalf("second revert: %s", pg.Explain(err))
	}
	env.complete()
	if _, err := eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("second migrate after a revert: %s", pg.Explain(err))
	}
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_lower": "applied", "003_nick": "applied"})
	env.expectRows(env.db, []string{"3|2|2"}, "SELECT count(*) FILTER (WHERE files->0->>'name' = '003_nick.yaml'), count(*) FILTER (WHERE kind = 'revert'), count(DISTINCT reverts) FROM online.migrations")
}

// TestTeamMigrateKeepsOldVersion: the default migrate with several pending
// files keeps the version the running application uses live (case 4): a
// writer on the previous version gets no error through a 2-file migrate,
// and after it; what cannot keep it live is refused, changing nothing.
func TestTeamMigrateKeepsOldVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	eng := env.engine(func(c *phases.Config) { c.BackfillBatchTime = 5 * time.Millisecond })
	dir := fstest.MapFS{"001_items.yaml": {Data: []byte(`operations:
  - create_table:
      name: items
      columns:
        - { name: id, type: bigserial, pk: true }
        - { name: name, type: text, nullable: false }
        - { name: price, type: int, nullable: false }
`)}}
	if _, err := eng.Migrate(ctx, loadDir(t, dir), workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	env.exec(env.db, "INSERT INTO items (name, price) SELECT 'i' || g, g FROM generate_series(1, 3000) g")
	dir["002_title.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - rename_column: { table: items, from: name, to: title }\n")}
	dir["003_price_bigint.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - alter_column: { table: items, column: price, type: bigint, up: price::bigint * 100, down: (price / 100)::int }\n")}
	d := loadDir(t, dir)

	// The old application: writes through public_001_items all along.
	old := env.version("public_001_items")
	var stop atomic.Bool
	var writes, failures atomic.Int64
	var firstErr atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := 1; !stop.Load(); k++ {
			_, err := old.Exec(ctx, "INSERT INTO items (name, price) VALUES ($1, $2)", fmt.Sprintf("old-%d", k), k)
			if err == nil {
				_, err = old.Exec(ctx, "UPDATE items SET price = price + 1 WHERE id = $1", k%3000+1)
			}
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			writes.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	res, err := eng.Migrate(ctx, d, workflow.MigrateOptions{})
	time.Sleep(100 * time.Millisecond) // the old application goes on after migrate returns
	stop.Store(true)
	<-done
	if err != nil {
		t.Fatalf("migrate 2 files: %s", pg.Explain(err))
	}
	if n := failures.Load(); n != 0 || writes.Load() < 10 {
		t.Fatalf("the application on the previous version: %d of %d writes failed (first: %v)", n, writes.Load(), firstErr.Load())
	}
	if res.InProgress != "003_price_bigint" || res.VersionSchema != "public_003_price_bigint" || len(res.Completed) != 0 {
		t.Fatalf("migrate: %+v", res)
	}
	expectStates(t, eng, d, map[string]string{"001_items": "applied", "002_title": "in_progress", "003_price_bigint": "in_progress"})
	// The new version has both files' shape, with the old writer's rows.
	env.expectRows(env.version("public_003_price_bigint"), []string{"i1|100|bigint", fmt.Sprintf("%d|NULL|NULL", writes.Load())},
		"SELECT title, price, pg_typeof(price)::text FROM items WHERE id = 1 UNION ALL SELECT count(*)::text, NULL, NULL FROM items WHERE title LIKE 'old-%'")

	// A migration in progress with a file pending after it: completing it
	// would retire public_001_items, so the default refuses.
	dir["004_note.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - add_column: { table: items, column: { name: note, type: text, nullable: true } }\n")}
	d = loadDir(t, dir)
	_, err = eng.Migrate(ctx, d, workflow.MigrateOptions{})
	var refused *workflow.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "retires public_001_items") || !strings.Contains(err.Error(), "online complete") {
		t.Fatalf("migrate with a migration in progress and a file pending: %v", err)
	}
	if !env.schemaExists("public_001_items") {
		t.Fatal("the refused migrate retired the old version")
	}
	env.complete()

	// Files that cannot join a window (a sql operation is alone): refused,
	// naming the ways on, and nothing changed; --to applies one at a time.
	dir["005_sql.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - sql: { up: CREATE TABLE other (id int), down: DROP TABLE other }\n")}
	d = loadDir(t, dir)
	_, err = eng.Migrate(ctx, d, workflow.MigrateOptions{})
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "--to FILE") || !strings.Contains(err.Error(), "--one-by-one") {
		t.Fatalf("migrate of files that cannot share a window: %v", err)
	}
	env.expectRows(env.db, []string{"0|0"}, "SELECT count(*) FILTER (WHERE relname = 'other'), (SELECT count(*) FROM online.migrations WHERE phase <> 'complete') FROM pg_class WHERE relnamespace = 'public'::regnamespace")
	res, err = eng.Migrate(ctx, d, workflow.MigrateOptions{To: "004_note"})
	if err != nil || res.InProgress != "004_note" {
		t.Fatalf("migrate --to 004_note: %+v, %v", res, err)
	}
	expectStates(t, eng, d, map[string]string{"001_items": "applied", "002_title": "applied", "003_price_bigint": "applied", "004_note": "in_progress", "005_sql": "pending"})
}

// TestTeamSchemaDrift: a change made by hand to the tables online manages
// is reported by status DIR and validate (case 5), with what changed; the
// migrations themselves (renames, type changes, indexes, a revert) are
// not drift.
func TestTeamSchemaDrift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	eng := env.engine()
	dir := fiveFiles()
	dir["006_unique.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - create_constraint: { table: users, name: users_email_key, type: unique, columns: [email_address], up: { email_address: email_address }, down: { email_address: email_address } }\n")}
	d := loadDir(t, dir)
	if _, err := eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	drift := func() *workflow.DriftCheck {
		t.Helper()
		st, err := eng.DirStatus(ctx, d)
		if err != nil {
			t.Fatalf("status: %s", pg.Explain(err))
		}
		return st.SchemaDrift
	}
	if dc := drift(); dc.Since != "006_unique" || len(dc.Drift) != 0 {
		t.Fatalf("drift right after migrate: %+v", dc)
	}
	if _, err := eng.Revert(ctx); err != nil {
		t.Fatalf("revert: %s", pg.Explain(err))
	}
	if dc := drift(); dc.NotChecked == "" {
		t.Fatalf("drift while a revert is in progress: %+v", dc)
	}
	env.complete()
	if dc := drift(); dc.Since != "revert_006_unique" || len(dc.Drift) != 0 {
		t.Fatalf("drift after a revert: %+v", dc)
	}
	if _, err := eng.ValidateDir(ctx, d); err != nil {
		t.Fatalf("validate without drift: %s", pg.Explain(err))
	}

	env.exec(env.db, "ALTER TABLE users ADD COLUMN added_by_hand int")
	env.exec(env.db, "ALTER TABLE users ALTER COLUMN score SET DEFAULT 7")
	env.exec(env.db, "CREATE INDEX users_nick_idx ON users (nick)")
	env.exec(env.db, "DROP INDEX orders_user_idx")
	dc := drift()
	var got []string
	for _, x := range dc.Drift {
		got = append(got, x.Object+" "+x.Change)
	}
	want := []string{"column users.added_by_hand added", "column users.score changed", "index orders_user_idx dropped", "index users_nick_idx added"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("drift: %v, want %v (%+v)", got, want, dc.Drift)
	}
	_, err := eng.ValidateDir(ctx, d)
	var sd *workflow.SchemaDriftError
	if !errors.As(err, &sd) || !strings.Contains(err.Error(), "column users.score was changed outside online: bigint DEFAULT 7, online left bigint") {
		t.Fatalf("validate with drift: %v", err)
	}
	// Undone by hand: no drift.
	env.exec(env.db, "ALTER TABLE users DROP COLUMN added_by_hand")
	env.exec(env.db, "ALTER TABLE users ALTER COLUMN score DROP DEFAULT")
	env.exec(env.db, "DROP INDEX users_nick_idx")
	env.exec(env.db, "CREATE INDEX orders_user_idx ON orders (user_id)")
	if dc := drift(); len(dc.Drift) != 0 {
		t.Fatalf("drift after undoing the changes: %+v", dc.Drift)
	}
}

// TestTeamOfflineValidation: offline validation models the constraints
// a create_table names in its columns, and past a sql operation it says
// what it cannot check instead of reporting a false error (case 6).
func TestTeamOfflineValidation(t *testing.T) {
	t.Parallel()
	res, err := workflow.ValidateFS(os.DirFS("../examples"), "public")
	if err != nil {
		t.Fatalf("the project's examples: %s", pg.Explain(err))
	}
	if len(res.Checked) < 10 || !slices.ContainsFunc(res.Warnings, func(w string) bool {
		return strings.Contains(w, "cannot check past the sql operation in 08_events_partitioned.yaml")
	}) {
		t.Fatalf("examples: %+v", res)
	}
	files := fstest.MapFS{
		"01_t.yaml": {Data: []byte(`operations:
  - create_table:
      name: t
      columns:
        - { name: id, type: int, pk: true }
        - { name: email, type: text, nullable: true, unique: true }
        - { name: qty, type: int, nullable: false, check: { name: t_qty_pos, constraint: "qty > 0" } }
`)},
		"02_names.yaml": {Data: []byte(`operations:
  - rename_constraint: { table: t, from: t_email_key, to: t_email_unique }
  - rename_constraint: { table: t, from: t_qty_pos, to: t_qty_positive }
`)},
		"03_drop.yaml": {Data: []byte("operations:\n  - drop_constraint: { table: t, name: t_qty_positive, up: qty, down: qty }\n")},
	}
	if _, err := workflow.ValidateFS(files, "public"); err != nil {
		t.Fatalf("constraints of a created table: %s", pg.Explain(err))
	}
	// A real mistake before any sql operation is still an error.
	files["04_bad.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - rename_constraint: { table: t, from: t_nope, to: t_x }\n")}
	if _, err := workflow.ValidateFS(files, "public"); err == nil || !strings.Contains(err.Error(), `no constraint "t_nope"`) {
		t.Fatalf("a constraint that does not exist: %v", err)
	}
}

// TestTeamRevertTo: revert --to NAME undoes the migrations after NAME one
// at a time, each online, never re-applying a reverted one (case 9).
func TestTeamRevertTo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	eng := env.engine()
	d := loadDir(t, teamFiles())
	if _, err := eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	for i, want := range []struct {
		reverts, version string
		remaining        int
	}{{"revert_003_nick", "public_002_lower", 1}, {"revert_002_lower", "public_001_users", 0}} {
		res, remaining, err := eng.RevertTo(ctx, "001_users.yaml")
		if err != nil || res.Migration != want.reverts || res.VersionSchema != want.version || remaining != want.remaining {
			t.Fatalf("revert --to, step %d: %+v, %d, %v; want %+v", i+1, res, remaining, err, want)
		}
		env.complete()
	}
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_lower": "pending", "003_nick": "pending"})
	if _, _, err := eng.RevertTo(ctx, "001_users"); !errors.Is(err, workflow.ErrNothingToRevert) {
		t.Fatalf("revert --to the last in effect: %v", err)
	}
	if _, _, err := eng.RevertTo(ctx, "003_nick"); err == nil || !strings.Contains(err.Error(), "names no migration in effect") {
		t.Fatalf("revert --to a reverted migration: %v", err)
	}
	if _, err := eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate again: %s", pg.Explain(err))
	}
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_lower": "applied", "003_nick": "applied"})
}

// TestTeamFileRenamed: a file whose extension changed (002_lower.yaml to
// .yml) is the same migration: applied, not pending with a missing twin.
func TestTeamFileRenamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	eng := env.engine()
	files := teamFiles()
	if _, err := eng.Migrate(ctx, loadDir(t, files), workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	files["002_lower.yml"] = files["002_lower.yaml"]
	delete(files, "002_lower.yaml")
	d := loadDir(t, files)
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_lower": "applied", "003_nick": "applied"})
	if res, err := eng.Migrate(ctx, d, workflow.MigrateOptions{}); err != nil || len(res.Applied) != 0 {
		t.Fatalf("migrate after the rename: %+v, %v", res, err)
	}
	// A file deleted is still missing.
	delete(files, "003_nick.yaml")
	expectStates(t, eng, loadDir(t, files), map[string]string{"001_users": "applied", "002_lower": "applied", "003_nick": "missing"})
}

// TestTeamPullOldStartRecord: a migration an older online applied by
// `online start FILE`, recorded without its file, is pulled as NAME.yaml,
// which the folder then takes for it (case 2).
func TestTeamPullOldStartRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "CREATE TABLE t (id int PRIMARY KEY, a text)")
	eng := env.engine()
	if err := eng.Init(ctx); err != nil {
		t.Fatal(err)
	}
	env.exec(env.db, `INSERT INTO online.migrations (schema, name, version_schema, document, plan, phase, completed_at)
  VALUES ('public', '01_old', 'public_01_old', '{"operations": [{"rename_column": {"table": "t", "from": "a", "to": "b"}}]}', '{}', 'complete', now())`)
	pulled, err := eng.Pull(ctx)
	if err != nil || len(pulled) != 1 || pulled[0].File != "01_old.yaml" {
		t.Fatalf("pull: %+v, %v", pulled, err)
	}
	expectStates(t, eng, loadDir(t, fstest.MapFS{"01_old.yaml": {Data: pulled[0].Content}}), map[string]string{"01_old": "applied"})
}
