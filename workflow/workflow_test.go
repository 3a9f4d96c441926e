package workflow_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/workflow"
)

// fiveFiles is a directory of varied migrations: tables, a rename, a type
// change with a backfill, an index (in JSON), a column with a default.
func fiveFiles() fstest.MapFS {
	return fstest.MapFS{
		"001_tables.yaml": {Data: []byte(`# the first tables
operations:
  - create_table:
      name: users
      columns:
        - { name: id, type: bigserial, pk: true }
        - { name: email, type: text, nullable: false }
        - { name: score, type: int, nullable: true }
  - create_table:
      name: orders
      columns:
        - { name: id, type: bigserial, pk: true }
        - { name: user_id, type: bigint, nullable: true }
`)},
		"002_rename_email.yaml": {Data: []byte("operations:\n  - rename_column: { table: users, from: email, to: email_address }\n")},
		"003_score_bigint.yaml": {Data: []byte("operations:\n  - alter_column: { table: users, column: score, type: bigint, up: score::bigint * 10, down: (score / 10)::int }\n")},
		"004_orders_idx.json":   {Data: []byte(`{"operations": [{"create_index": {"table": "orders", "name": "orders_user_idx", "columns": ["user_id"]}}]}`)},
		"005_nick.yml":          {Data: []byte("operations:\n  - add_column: { table: users, column: { name: nick, type: text, nullable: true, default: \"'anon'\" } }\n")},
		"README.md":             {Data: []byte("not a migration")},
	}
}

func loadDir(t *testing.T, fsys fstest.MapFS) *workflow.Dir {
	t.Helper()
	d, err := workflow.LoadDir(fsys)
	if err != nil {
		t.Fatalf("load dir: %s", pg.Explain(err))
	}
	return d
}

func fileStates(t *testing.T, eng *workflow.Engine, d *workflow.Dir) map[string]workflow.FileStatus {
	t.Helper()
	st, err := eng.DirStatus(context.Background(), d)
	if err != nil {
		t.Fatalf("status: %s", pg.Explain(err))
	}
	out := map[string]workflow.FileStatus{}
	for _, f := range st.Files {
		out[f.Name] = f
	}
	return out
}

func expectStates(t *testing.T, eng *workflow.Engine, d *workflow.Dir, want map[string]string) map[string]workflow.FileStatus {
	t.Helper()
	got := fileStates(t, eng, d)
	if len(got) != len(want) {
		t.Fatalf("status lists %d files, want %d: %+v", len(got), len(want), got)
	}
	for name, state := range want {
		if got[name].State != state {
			t.Fatalf("file %s: state %q, want %q (all: %+v)", name, got[name].State, state, got)
		}
	}
	return got
}

// TestWorkflowDirectory takes a directory of five files through validate,
// migrate, status, a new file, migrate --complete, revert, pull, and an
// edited applied file, asserting catalog, data and history at each step.
func TestWorkflowDirectory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	eng := env.engine()
	dir := fiveFiles()

	// Offline: every file compiles against what the files before it build.
	res, err := workflow.ValidateFS(dir, "public")
	if err != nil {
		t.Fatalf("validate: %s", pg.Explain(err))
	}
	if len(res.Checked) != 5 {
		t.Fatalf("validate checked %v, want the five files", res.Checked)
	}

	// The first file alone, completed, so that there are rows to carry.
	first := fstest.MapFS{"001_tables.yaml": dir["001_tables.yaml"]}
	if _, err := eng.Migrate(ctx, loadDir(t, first), workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate the first file: %s", pg.Explain(err))
	}
	env.exec(env.db, "INSERT INTO users (email, score) VALUES ('a@x', 1), ('b@x', 2), ('c@x', NULL)")
	env.exec(env.db, "INSERT INTO orders (user_id) VALUES (1), (2)")

	var events []string
	d := loadDir(t, dir)
	mres, err := eng.Migrate(ctx, d, workflow.MigrateOptions{OneByOne: true, OnFile: func(ev workflow.FileEvent) {
		events = append(events, strings.Join(ev.Files, ",")+" "+ev.Action)
	}})
	if err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	if want := []string{"002_rename_email.yaml", "003_score_bigint.yaml", "004_orders_idx.json", "005_nick.yml"}; !slices.Equal(mres.Applied, want) {
		t.Fatalf("applied %v, want %v", mres.Applied, want)
	}
	if mres.InProgress != "005_nick" || mres.VersionSchema != "public_005_nick" {
		t.Fatalf("in progress %q (%q), want 005_nick left in progress", mres.InProgress, mres.VersionSchema)
	}
	if events[0] != "002_rename_email.yaml starting" || events[len(events)-1] != "005_nick.yml started" || len(events) != 4*2+3*2 {
		t.Fatalf("progress events: %v", events)
	}
	// Both versions of the last file are live; the rows carry over.
	env.expectRows(env.version("public_004_orders_idx"), []string{"a@x|10|", "b@x|20|", "c@x|NULL|"}, "SELECT email_address, score, '' FROM users ORDER BY id")
	newV := env.version("public_005_nick")
	env.expectRows(newV, []string{"a@x|10|anon", "b@x|20|anon", "c@x|NULL|anon"}, "SELECT email_address, score, nick FROM users ORDER BY id")
	env.expectRows(env.db, []string{"bigint"}, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'score'")
	env.expectRows(env.db, []string{"orders_user_idx"}, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'orders' AND indexname <> 'orders_pkey'")

	states := expectStates(t, eng, d, map[string]string{"001_tables": "applied", "002_rename_email": "applied", "003_score_bigint": "applied", "004_orders_idx": "applied", "005_nick": "in_progress"})
	if s := states["003_score_bigint"]; s.RowsDone != 3 || s.AppliedAt == nil || s.AppliedBy != "postgres" || s.Checksum != s.Applied || len(s.Checksum) != 64 {
		t.Fatalf("status of 003: %+v", s)
	}
	// The history: one row per file, its name, checksum and who.
	env.expectRows(env.db, []string{
		"001_tables|001_tables.yaml|migration|postgres|true",
		"002_rename_email|002_rename_email.yaml|migration|postgres|true",
		"003_score_bigint|003_score_bigint.yaml|migration|postgres|true",
		"004_orders_idx|004_orders_idx.json|migration|postgres|true",
		"005_nick|005_nick.yml|migration|postgres|true",
	}, "SELECT name, files->0->>'name', kind, applied_by, os_user IS NOT NULL AND duration_ms > 0 AND length(files->0->>'checksum') = 64 FROM online.migrations ORDER BY started_at")

	// Nothing pending: safe to re-run.
	mres, err = eng.Migrate(ctx, d, workflow.MigrateOptions{})
	if err != nil || len(mres.Applied) != 0 || mres.InProgress != "005_nick" {
		t.Fatalf("migrate again: %+v, %v", mres, err)
	}

	// A new file, numbered after the last.
	next, err := workflow.NextFileName([]string{"001_tables", "002_rename_email", "003_score_bigint", "004_orders_idx", "005_nick"}, "purchases", time.Now())
	if err != nil || next != "006_purchases.yaml" {
		t.Fatalf("next file name %q, %v", next, err)
	}
	dir[next] = &fstest.MapFile{Data: []byte(`operations:
  - rename_table: { from: orders, to: purchases }
  - add_column: { table: purchases, column: { name: note, type: text, nullable: true } }
`)}
	d = loadDir(t, dir)
	mres, err = eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true})
	if err != nil {
		t.Fatalf("migrate --complete: %s", pg.Explain(err))
	}
	if !slices.Equal(mres.Completed, []string{"005_nick.yml", "006_purchases.yaml"}) || mres.InProgress != "" || mres.Latest != "public_006_purchases" {
		t.Fatalf("migrate --complete: %+v", mres)
	}
	env.expectRows(env.db, []string{"id", "user_id", "note"}, "SELECT attname FROM pg_attribute WHERE attrelid = 'public.purchases'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum")

	// Revert: the inverse of 006 as an ordinary migration, both versions live.
	rres, err := eng.Revert(ctx)
	if err != nil {
		t.Fatalf("revert: %s", pg.Explain(err))
	}
	if rres.Migration != "revert_006_purchases" {
		t.Fatalf("revert started %q", rres.Migration)
	}
	env.exec(env.version("public_006_purchases"), "INSERT INTO purchases (user_id, note) VALUES (3, 'n')")
	env.expectRows(env.version(rres.VersionSchema), []string{"1", "2", "3"}, "SELECT user_id FROM orders ORDER BY id")
	env.complete()
	env.expectRows(env.db, []string{"id", "user_id"}, "SELECT attname FROM pg_attribute WHERE attrelid = 'public.orders'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum")
	env.expectRows(env.db, []string{"revert_006_purchases|revert|006_purchases"}, "SELECT name, kind, reverts FROM online.migrations WHERE kind = 'revert'")
	expectStates(t, eng, d, map[string]string{"001_tables": "applied", "002_rename_email": "applied", "003_score_bigint": "applied", "004_orders_idx": "applied", "005_nick": "applied", "006_purchases": "pending"})

	// Pull writes the applied files (not the reverted one); they read back
	// with the checksums the history holds.
	pulled, err := eng.Pull(ctx)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	out := t.TempDir()
	for _, f := range pulled {
		if err := os.WriteFile(filepath.Join(out, f.File), f.Content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pd, err := workflow.LoadDir(os.DirFS(out))
	if err != nil {
		t.Fatalf("load the pulled files: %s", pg.Explain(err))
	}
	if len(pd.Files) != 5 {
		t.Fatalf("pulled %d files, want 5", len(pd.Files))
	}
	for i, f := range pd.Files {
		if f.File != d.Files[i].File || f.Checksum != d.Files[i].Checksum {
			t.Fatalf("pulled %s (%s), want %s (%s):\n%s", f.File, f.Checksum, d.Files[i].File, d.Files[i].Checksum, pulled[i].Content)
		}
	}

	// An edited applied file and a removed one: reported and refused.
	dir["003_score_bigint.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - alter_column: { table: users, column: score, type: bigint, up: score::bigint * 100, down: (score / 100)::int }\n")}
	delete(dir, "002_rename_email.yaml")
	d = loadDir(t, dir)
	expectStates(t, eng, d, map[string]string{"001_tables": "applied", "002_rename_email": "missing", "003_score_bigint": "modified", "004_orders_idx": "applied", "005_nick": "applied", "006_purchases": "pending"})
	_, err = eng.Migrate(ctx, d, workflow.MigrateOptions{})
	var drift *workflow.DriftError
	if !errors.As(err, &drift) || !strings.Contains(err.Error(), "003_score_bigint.yaml") || !strings.Contains(err.Error(), "002_rename_email") {
		t.Fatalf("migrate with an edited file: want a DriftError naming both files, got %v", err)
	}
	env.expectRows(env.db, []string{"0"}, "SELECT count(*) FROM pg_class WHERE relname = 'purchases'")
	// Comments and formatting are not drift.
	dir["003_score_bigint.yaml"] = &fstest.MapFile{Data: []byte("# reformatted\noperations:\n  - alter_column:\n      table: users\n      column: score\n      type: bigint\n      up: score::bigint * 10\n      down: (score / 10)::int\n")}
	dir["002_rename_email.yaml"] = fiveFiles()["002_rename_email.yaml"]
	d = loadDir(t, dir)
	if s := fileStates(t, eng, d)["003_score_bigint"]; s.State != "applied" {
		t.Fatalf("a reformatted applied file: state %q, want applied", s.State)
	}

	// A pending file that sorts before an applied one.
	dir["0025_late.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - create_index: { table: users, name: users_score_idx, columns: [score] }\n")}
	_, err = eng.Migrate(ctx, loadDir(t, dir), workflow.MigrateOptions{})
	var de *workflow.DirError
	if !errors.As(err, &de) || de.File != "0025_late.yaml" {
		t.Fatalf("a file sorting before applied ones: want a DirError naming it, got %v", err)
	}
	env.expectRows(env.db, []string{"0"}, "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_score_idx'")
}

// TestWorkflowRevertRefuses: a migration that drops a column cannot be
// reverted; the refusal names the operation and the reason.
func TestWorkflowRevertRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "CREATE TABLE t (id int PRIMARY KEY, a text, b text)")
	eng := env.engine()
	dir := fstest.MapFS{"01_drop.yaml": {Data: []byte("operations:\n  - rename_column: { table: t, from: a, to: aa }\n  - drop_column: { table: t, column: b }\n")}}
	if _, err := eng.Migrate(ctx, loadDir(t, dir), workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	_, err := eng.Revert(ctx)
	var ie *operations.IrreversibleError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "operation 2 (drop_column): drops a column") || strings.Contains(err.Error(), "operation 1") {
		t.Fatalf("revert of a drop_column: %v", err)
	}
	env.expectRows(env.db, []string{"0"}, "SELECT count(*) FROM online.migrations WHERE phase <> 'complete'")
}

// TestWorkflowRevertConstraints: the revert of a migration that created a
// check constraint on one column and a unique constraint on two drops both
// again, through the format's own drop operations, while both versions
// serve; the rows are kept.
func TestWorkflowRevertConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, `CREATE TABLE t (id int PRIMARY KEY, "Qty" int NOT NULL, a text NOT NULL, b text NOT NULL)`,
		`INSERT INTO t SELECT g, g, 'a' || g, 'b' || g FROM generate_series(1, 100) g`)
	eng := env.engine()
	dir := fstest.MapFS{"01_constraints.yaml": {Data: []byte(`operations:
  - create_constraint: { table: t, name: t_qty_positive, type: check, columns: [Qty], check: '"Qty" > 0', up: { Qty: 'greatest("Qty", 1)' }, down: { Qty: '"Qty"' } }
  - create_constraint: { table: t, name: t_a_b_key, type: unique, columns: [a, b], up: { a: a, b: b }, down: { a: a, b: b } }
`)}}
	if _, err := eng.Migrate(ctx, loadDir(t, dir), workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	constraints := "SELECT conname FROM pg_constraint WHERE conrelid = 'public.t'::regclass AND contype IN ('c', 'u') ORDER BY conname"
	env.expectRows(env.db, []string{"t_a_b_key", "t_qty_positive"}, constraints)
	res, err := eng.Revert(ctx)
	if err != nil {
		t.Fatalf("revert: %s", pg.Explain(err))
	}
	// While both versions serve, the reverted one takes a quantity the
	// check refused; the old one sees it as the check's up made it.
	nw := env.version(res.VersionSchema)
	env.exec(nw, `INSERT INTO t (id, "Qty", a, b) VALUES (101, -5, 'a101', 'b101')`)
	env.expectRows(env.version("public_01_constraints"), []string{"1"}, `SELECT "Qty" FROM t WHERE id = 101`)
	env.complete()
	env.expectRows(env.db, []string{}, constraints)
	// Both are gone: a duplicate pair and a negative quantity are taken.
	env.exec(env.version(res.VersionSchema), `INSERT INTO t (id, "Qty", a, b) VALUES (102, -1, 'a1', 'b1')`)
	env.expectRows(env.db, []string{"102|100|-5"}, `SELECT count(*), count(*) FILTER (WHERE "Qty" = id), (SELECT "Qty" FROM t WHERE id = 101) FROM t`)
}

// TestWorkflowBadDirectories: each bad directory is a clear error naming
// the file, and nothing is changed.
func TestWorkflowBadDirectories(t *testing.T) {
	t.Parallel()
	ok := []byte("operations:\n  - create_table: { name: a, columns: [{ name: id, type: int, pk: true }] }\n")
	cases := []struct {
		name string
		fsys fstest.MapFS
		want []string
	}{
		{"same name twice", fstest.MapFS{"003_a.yaml": {Data: ok}, "003_a.json": {Data: []byte(`{"operations": []}`)}}, []string{"003_a.yaml", "same name as 003_a.json"}},
		{"same number twice", fstest.MapFS{"003_a.yaml": {Data: ok}, "003_b.yaml": {Data: ok}}, []string{"003_b.yaml", "same number 003 as 003_a.yaml"}},
		{"no migrations", fstest.MapFS{"README.md": {Data: []byte("x")}}, []string{"holds no migration files"}},
		{"bad file", fstest.MapFS{"001_a.yaml": {Data: ok}, "002_b.yaml": {Data: []byte("operations:\n  - create_index: { tabel: a }\n")}}, []string{"002_b.yaml", "operation 1 (create_index)", `field "tabel"`}},
	}
	for _, c := range cases {
		_, err := workflow.LoadDir(c.fsys)
		if err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
	// An unreadable file (a dangling link) on a real directory.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "001_a.yaml"), ok, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "002_b.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := workflow.LoadDir(os.DirFS(dir)); err == nil || !strings.Contains(err.Error(), "002_b.yaml: read") {
		t.Fatalf("unreadable file: %v", err)
	}
	// A gap is a warning, not an error.
	d, err := workflow.LoadDir(fstest.MapFS{"001_a.yaml": {Data: ok}, "004_b.yaml": {Data: []byte("operations:\n  - create_table: { name: b, columns: [{ name: id, type: int, pk: true }] }\n")}})
	if err != nil || len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "004_b.yaml: numbering gap: no migration numbered 2 to 3") {
		t.Fatalf("gap: %v, %v", d, err)
	}
	// Offline validation reports every invalid file, not just the first.
	_, err = workflow.ValidateFS(fstest.MapFS{
		"001_a.yaml": {Data: ok},
		"002_b.yaml": {Data: []byte("operations:\n  - add_column: { table: nope, column: { name: x, type: int, nullable: true } }\n")},
		"003_c.yaml": {Data: []byte("operations:\n  - rename_column: { table: a, from: missing, to: y }\n")},
		"004_d.yaml": {Data: []byte("operations:\n  - rename_column: { table: a, from: id, to: key }\n")},
	}, "public")
	var ve *workflow.ValidationError
	if !errors.As(err, &ve) || len(ve.Errs) != 2 || !strings.Contains(err.Error(), `002_b.yaml: operation 1 (add_column): field "table"`) || !strings.Contains(err.Error(), `003_c.yaml: operation 1 (rename_column): field "from"`) {
		t.Fatalf("validate: want both invalid files, got %v", err)
	}
}

// TestNextFileName keeps the directory's numbering style.
func TestNextFileName(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, c := range []struct {
		names []string
		want  string
	}{
		{nil, "001_x.yaml"},
		{[]string{"01_a", "02_b"}, "03_x.yaml"},
		{[]string{"0009_a"}, "0010_x.yaml"},
		{[]string{"20240101120000_a"}, "20260304050607_x.yaml"},
	} {
		got, err := workflow.NextFileName(c.names, "x", now)
		if err != nil || got != c.want {
			t.Fatalf("%v: %q, %v; want %q", c.names, got, err, c.want)
		}
	}
	if _, err := workflow.NextFileName([]string{"init"}, "x", now); err == nil {
		t.Fatal("a directory not numbered: want an error")
	}
	if _, err := workflow.NextFileName(nil, "bad name", now); err == nil {
		t.Fatal("a name with a space: want an error")
	}
}

// TestStateUpgrade: a state schema made by an online without the directory
// workflow gets its new columns, and its history reads on.
func TestStateUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "CREATE TABLE t (id int PRIMARY KEY)", "CREATE SCHEMA online", `CREATE TABLE online.migrations (
  schema text NOT NULL, name text NOT NULL, version_schema text NOT NULL, parent text, document jsonb NOT NULL, plan jsonb NOT NULL,
  phase text NOT NULL, steps_done int NOT NULL DEFAULT 0, contract_done int NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), completed_at timestamptz,
  PRIMARY KEY (schema, name))`,
		`INSERT INTO online.migrations (schema, name, version_schema, document, plan, phase, completed_at)
  VALUES ('public', '01_old', 'public_01_old', '{"operations": [{"rename_column": {"table": "t", "from": "a", "to": "b"}}]}', '{}', 'complete', now())`)
	eng := env.engine()
	if err := eng.Init(ctx); err != nil {
		t.Fatalf("init over an old state schema: %v", err)
	}
	if err := eng.Init(ctx); err != nil {
		t.Fatalf("init again: %v", err)
	}
	env.expectRows(env.db, []string{"01_old|migration|[]|0"}, "SELECT name, kind, files, duration_ms FROM online.migrations")
	// The old record, applied by `online start FILE`, is matched by name.
	dir := fstest.MapFS{"01_old.yaml": {Data: []byte("operations:\n  - rename_column: { table: t, from: a, to: b }\n")}}
	expectStates(t, eng, loadDir(t, dir), map[string]string{"01_old": "applied"})
}

// TestWorkflowInProgressEdited: a file edited while its migration is in
// progress is reported and migrate refuses, naming the way out.
func TestWorkflowInProgressEdited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "CREATE TABLE t (id int PRIMARY KEY, a text)")
	eng := env.engine()
	dir := fstest.MapFS{"01_a.yaml": {Data: []byte("operations:\n  - rename_column: { table: t, from: a, to: b }\n")}}
	if _, err := eng.Migrate(ctx, loadDir(t, dir), workflow.MigrateOptions{}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	dir["01_a.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - rename_column: { table: t, from: a, to: c }\n")}
	d := loadDir(t, dir)
	expectStates(t, eng, d, map[string]string{"01_a": "modified"})
	_, err := eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: true})
	var drift *workflow.DriftError
	if !errors.As(err, &drift) || !strings.Contains(err.Error(), "01_a.yaml is in progress") || !strings.Contains(err.Error(), "online rollback") {
		t.Fatalf("migrate: %v", err)
	}
	env.expectRows(env.db, []string{"active"}, "SELECT phase FROM online.migrations")
}
