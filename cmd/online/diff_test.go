package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
)

// TestDiffAndRehearseCLI checks the exit codes and outputs of diff and
// rehearse: the generated file runs, a rename hint is honoured, and bad
// input is exit 2.
func TestDiffAndRehearseCLI(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, age text)", "INSERT INTO users (email, age) VALUES ('a@x', '7'), ('b@x', 'x')")
	dir := t.TempDir()
	desired := writeFile(t, dir, "schema.sql", "CREATE TABLE users (id bigserial PRIMARY KEY, mail text NOT NULL, age text, nick text);\nCREATE INDEX users_nick ON users (nick);\n")
	bad := writeFile(t, dir, "bad.sql", "CREATE TABLE users (id bigserial PRIMARY KEY, age nosuchtype);\n")
	out := filepath.Join(dir, "02_desired.yaml")
	db2 := []string{"--database-url", url}

	r := runCLI(t, append([]string{"diff", desired}, db2...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "drop_column") || !strings.Contains(r.stderr, "rename candidate: column users.email -> mail (pass --rename users.email=mail") {
		t.Fatalf("diff without hints: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, append([]string{"diff", desired, "--rename", "users.email=mail", "-o", out}, db2...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "wrote "+out) {
		t.Fatalf("diff: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	text, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(text), "rename_column") || strings.Contains(string(text), "drop_column") || !strings.Contains(string(text), "name: 02_desired") {
		t.Fatalf("generated file:\n%s", text)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad sql", []string{"diff", bad}, "bad.sql: load the desired schema"},
		{"bad rename", []string{"diff", desired, "--rename", "nonsense"}, "want old=new"},
		{"rename of nothing", []string{"diff", desired, "--rename", "users.nope=mail"}, `column "nope" is not in table "users"`},
		{"no input", []string{"diff"}, "give either DESIRED.sql or --to-url"},
		{"missing file", []string{"diff", filepath.Join(dir, "nope.sql")}, "nope.sql"},
		{"bad sample", []string{"rehearse", out, "--sample", "-3"}, "--sample"},
		{"bad migration", []string{"rehearse", writeFile(t, dir, "typo.yaml", "operations:\n  - drop_table: { nam: users }\n")}, "typo.yaml: operation 1 (drop_table)"},
	} {
		r := runCLI(t, append(c.args, db2...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Fatalf("%s: exit %d, want 2 and %q\nstderr: %s", c.name, r.code, c.want, r.stderr)
		}
	}

	// Two databases: --to-url reads the desired schema from the other.
	other := pgtest.NewDB(t)
	pgtest.Exec(t, pgtest.Connect(t, other), "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, age text, active boolean NOT NULL DEFAULT true)")
	r = runCLI(t, append([]string{"diff", "--to-url", other}, db2...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "name: active") || !strings.Contains(r.stdout, "default: \"true\"") {
		t.Fatalf("diff --to-url: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// The generated file rehearses fine, and then runs for real.
	r = runCLI(t, append([]string{"rehearse", out}, db2...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "rehearsal: WOULD SUCCEED") {
		t.Fatalf("rehearse: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, append([]string{"start", out, "--complete"}, db2...)...)
	if r.code != 0 {
		t.Fatalf("start: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if got := strings.Join(pgtest.QueryStrings(t, db, "SELECT id, mail, age, nick FROM users ORDER BY id"), ","); got != "1|a@x|7|NULL,2|b@x|x|NULL" {
		t.Fatalf("data after the generated migration: %s", got)
	}

	// A failing migration: exit 1, with the file, operation and field.
	failing := writeFile(t, dir, "03_age.yaml", "operations:\n  - alter_column: { table: users, column: age, type: integer, up: \"CAST(age AS integer)\", down: \"CAST(age AS text)\" }\n")
	r = runCLI(t, append([]string{"rehearse", failing, "--json"}, db2...)...)
	if r.code != 1 || !strings.Contains(r.stdout, `"success": false`) || !strings.Contains(r.stdout, `"field": "up"`) || !strings.Contains(r.stderr, "the rehearsal failed") {
		t.Fatalf("failing rehearse: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// TestDiffVerifyAndCheckCLI: diff checks its migration on a scratch copy
// and exits 5, listing each object it leaves different, instead of
// finishing quietly; --check compares the live schema with the file (exit
// 1 when they differ), and online's own schemas never count as a
// difference.
func TestDiffVerifyAndCheckCLI(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE t (id int PRIMARY KEY, n int); CREATE VIEW v AS SELECT id FROM t")
	dir := t.TempDir()
	db2 := []string{"--database-url", url}
	// A new column diff expresses; a changed view it does not.
	partial := writeFile(t, dir, "partial.sql", "CREATE TABLE t (id int PRIMARY KEY, n int, note text); CREATE VIEW v AS SELECT id, n FROM t;\n")
	out := filepath.Join(dir, "02_partial.yaml")
	r := runCLI(t, append([]string{"diff", partial, "-o", out}, db2...)...)
	if r.code != exitIncomplete || !strings.Contains(r.stderr, "not expressed: after this migration, view public.v differs") ||
		strings.Contains(r.stderr, "column public.t.note") {
		t.Fatalf("diff with a changed view: exit %d, want %d naming the view only\nstdout: %s\nstderr: %s", r.code, exitIncomplete, r.stdout, r.stderr)
	}
	if text, err := os.ReadFile(out); err != nil || !strings.Contains(string(text), "name: note") {
		t.Fatalf("the migration is written all the same: %v\n%s", err, text)
	}
	// --json: the same, for a machine.
	r = runCLI(t, append([]string{"diff", partial, "-o", out, "--json"}, db2...)...)
	if r.code != exitIncomplete || !strings.Contains(r.stdout, `"differences": [`) || !strings.Contains(r.stdout, `view public.v differs`) {
		t.Fatalf("diff --json: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// --check: the live schema lacks the column and has the old view.
	r = runCLI(t, append([]string{"diff", partial, "--check", "--json"}, db2...)...)
	if r.code != exitFailure || !strings.Contains(r.stdout, "column public.t.note is missing") || !strings.Contains(r.stdout, "view public.v differs") {
		t.Fatalf("diff --check: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// A migration diff expresses fully exits 0; once it ran, --check
	// finds nothing: online's state and version schemas are not the
	// user's.
	exact := writeFile(t, dir, "exact.sql", "CREATE TABLE t (id int PRIMARY KEY, n int, note text); CREATE VIEW v AS SELECT id FROM t;\n")
	out = filepath.Join(dir, "03_exact.yaml")
	if r = runCLI(t, append([]string{"diff", exact, "-o", out}, db2...)...); r.code != 0 {
		t.Fatalf("diff of a change it expresses: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if r = runCLI(t, append([]string{"start", out, "--complete"}, db2...)...); r.code != 0 {
		t.Fatalf("start: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if r = runCLI(t, append([]string{"diff", exact, "--check"}, db2...)...); r.code != 0 || !strings.Contains(r.stdout, "the live schema is the desired one") {
		t.Fatalf("diff --check after the migration: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r = runCLI(t, append([]string{"diff", exact, "--check", "-o", out}, db2...)...); r.code != exitUsage {
		t.Fatalf("--check with --output: exit %d, want 2", r.code)
	}
}

func TestMigrationFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, n := range []string{"02_b.yml", "01_a.yaml", "notes.txt", "03_c.json"} {
		writeFile(t, dir, n, "operations: []\n")
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := migrationFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, filepath.Base(p))
	}
	if strings.Join(names, " ") != "01_a.yaml 02_b.yml 03_c.json" {
		t.Fatalf("files %v", names)
	}
	if _, err := migrationFiles(t.TempDir()); err == nil {
		t.Fatal("an empty directory must be refused")
	}
	if got, err := migrationFiles(filepath.Join(dir, "01_a.yaml")); err != nil || len(got) != 1 {
		t.Fatalf("a file: %v %v", got, err)
	}
}
