package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
)

type cliResult struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	if !strings.Contains(strings.Join(args, " "), "--log-format") {
		args = append(args, "--log-format=json")
	}
	code := run(context.Background(), args, &out, &errb)
	return cliResult{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLIContract(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)", "INSERT INTO users (email) VALUES ('a@x')")
	dir := t.TempDir()
	good := writeFile(t, dir, "01_rename.yaml", "operations:\n  - rename_column: { table: users, from: email, to: email_address }\n")
	typo := writeFile(t, dir, "02_typo.yaml", "operations:\n  - rename_column: { table: users, form: email, to: x }\n")
	missing := writeFile(t, dir, "03_missing.yaml", "operations:\n  - rename_column: { table: nope, from: a, to: b }\n")
	// A down naming a column that does not exist: refused before any change,
	// not by PostgreSQL inside a trigger function.
	badDown := writeFile(t, dir, "04_bad_down.yaml", "operations:\n  - alter_column: { table: users, column: email, type: varchar(100), up: email, down: emial }\n")
	// pgroll's default: a column without nullable is NOT NULL, so on a table
	// with rows it needs up.
	notNull := writeFile(t, dir, "05_not_null.yaml", "operations:\n  - add_column: { table: users, column: { name: handle, type: text } }\n")
	db2 := []string{"--database-url", url}

	steps := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings
		stderr   []string
		noStdout bool
	}{
		{name: "plan", args: []string{"plan", good}, code: 0, stdout: []string{`RENAME COLUMN "email" TO "email_address"`, "== rollback"}},
		{name: "bad field", args: []string{"start", typo}, code: 2, stderr: []string{"02_typo.yaml", "operation 1 (rename_column)", `field "form"`, "nothing was changed"}, noStdout: true},
		{name: "missing table", args: []string{"start", missing}, code: 2, stderr: []string{"03_missing.yaml", "operation 1 (rename_column)", `field "table"`, `table "nope" does not exist`}, noStdout: true},
		{name: "down names a missing column", args: []string{"start", badDown}, code: 2, stderr: []string{"04_bad_down.yaml", "operation 1 (alter_column)", `field "down"`, `column "emial" does not exist`, "nothing was changed"}, noStdout: true},
		{name: "NOT NULL by default needs up", args: []string{"start", notNull}, code: 2, stderr: []string{"05_not_null.yaml", "operation 1 (add_column)", `field "up"`, `column "handle" is NOT NULL`}, noStdout: true},
		{name: "missing file", args: []string{"start", filepath.Join(dir, "nope.yaml")}, code: 2, stderr: []string{"nope.yaml"}},
		{name: "no args", args: []string{"start"}, code: 2, stderr: []string{"accepts 1 arg"}},
		{name: "complete with nothing", args: []string{"complete"}, code: 4, stderr: []string{"no migration is in progress"}},
		{name: "start", args: []string{"start", good, "--json"}, code: 0, stdout: []string{`"version_schema": "public_01_rename"`, `"phase": "active"`}},
		{name: "start other while in progress", args: []string{"start", missing}, code: 3, stderr: []string{`migration "01_rename" is in progress`}},
		{name: "latest", args: []string{"latest"}, code: 0, stdout: []string{"public_01_rename\n"}},
		{name: "status", args: []string{"status", "--json"}, code: 0, stdout: []string{`"latest": "public_01_rename"`, `"phase": "active"`}},
		{name: "complete", args: []string{"complete"}, code: 0, stdout: []string{"migration 01_rename complete"}},
		{name: "rollback with nothing", args: []string{"rollback"}, code: 4},
		{name: "bad log format", args: []string{"status", "--log-format", "xml"}, code: 2},
	}
	for _, s := range steps {
		r := runCLI(t, append(s.args, db2...)...)
		expectCLI(t, s.name, r, s.code, s.stdout, s.stderr)
		if s.noStdout && r.stdout != "" {
			t.Fatalf("%s: stdout should be empty, got %q", s.name, r.stdout)
		}
	}
	// Logs on stderr are JSON lines a machine can read.
	r := runCLI(t, append([]string{"status"}, db2...)...)
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if line == "" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
	}
}

// TestStatusSumsUpLeafBackfills: a partitioned table is backfilled leaf by
// leaf, and status sums up the finished leaves instead of listing each.
func TestStatusSumsUpLeafBackfills(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db,
		"CREATE TABLE ev (id bigint NOT NULL, day int NOT NULL, score int, PRIMARY KEY (id, day)) PARTITION BY LIST (day)",
		"DO $$ BEGIN FOR i IN 0..11 LOOP EXECUTE format('CREATE TABLE ev_%s PARTITION OF ev FOR VALUES IN (%s)', i, i); END LOOP; END $$",
		"INSERT INTO ev SELECT g, g % 12, g FROM generate_series(1, 120) g")
	file := writeFile(t, t.TempDir(), "01_wide.yaml", "operations:\n  - alter_column: { table: ev, column: score, type: bigint, up: score, down: score::int }\n")
	db2 := []string{"--database-url", url}
	if r := runCLI(t, append([]string{"start", file}, db2...)...); r.code != 0 {
		t.Fatalf("start: exit %d\n%s", r.code, r.stderr)
	}
	r := runCLI(t, append([]string{"status"}, db2...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "backfill: 12 tables or partitions done, 120 rows") || strings.Contains(r.stdout, "backfill ev_") {
		t.Fatalf("status: exit %d\n%s", r.code, r.stdout)
	}
}

// TestCLIHostileFields: SQL smuggled through a field, a type that does not
// exist and an up naming a missing column exit with code 2 and a message
// naming the file, the operation and the field; the schema stays as it was.
func TestCLIHostileFields(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE t (id int PRIMARY KEY, keepme text)", "INSERT INTO t VALUES (1, 'k')", "CREATE TABLE other (id int)")
	before := pgtest.DumpSchema(t, url, "public")
	dir := t.TempDir()
	db2 := []string{"--database-url", url}
	cases := []struct{ name, op, field, says string }{
		{"type-semicolon", `add_column: { table: t, column: { name: z, type: "int; drop table other" } }`, "column.type", "a single type name"},
		{"type-drop-column", `add_column: { table: t, column: { name: z, type: "int, drop column keepme" } }`, "column.type", "a single type name"},
		{"type-alter-column", `add_column: { table: t, column: { name: z, type: "int, alter column keepme type int using length(keepme)" } }`, "column.type", "a single type name"},
		{"type-missing", `add_column: { table: t, column: { name: z, type: bigintt, nullable: true } }`, "column.type", "type bigintt does not exist"},
		{"up-missing-column", `add_column: { table: t, column: { name: z, type: int, nullable: true }, up: "nosuch + 1" }`, "up", `column "nosuch" does not exist`},
	}
	for _, c := range cases {
		file := writeFile(t, dir, c.name+".yaml", "operations:\n  - "+c.op+"\n")
		for _, cmd := range []string{"start", "plan"} {
			if cmd == "plan" && strings.Contains(c.name, "missing") {
				continue // only start asks the catalog
			}
			r := runCLI(t, append([]string{cmd, file}, db2...)...)
			if r.code != 2 {
				t.Fatalf("%s %s: exit %d, want 2\nstdout: %s\nstderr: %s", cmd, c.name, r.code, r.stdout, r.stderr)
			}
			for _, want := range []string{c.name + ".yaml", "operation 1 (add_column)", `field "` + c.field + `"`, c.says, "nothing was changed"} {
				if !strings.Contains(r.stderr, want) {
					t.Fatalf("%s %s: stderr lacks %q:\n%s", cmd, c.name, want, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "undone") {
				t.Fatalf("%s %s: a refusal says something was undone:\n%s", cmd, c.name, r.stderr)
			}
		}
	}
	if after := pgtest.DumpSchema(t, url, "public"); after != before {
		t.Fatalf("the refused migrations changed the schema:\n%s", after)
	}
}

// expectCLI checks a command's exit code and that its stdout and stderr
// hold the given substrings.
func expectCLI(t *testing.T, name string, r cliResult, code int, stdout, stderr []string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", name, r.code, code, r.stdout, r.stderr)
	}
	for _, want := range stdout {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("%s: stdout lacks %q:\n%s", name, want, r.stdout)
		}
	}
	for _, want := range stderr {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("%s: stderr lacks %q:\n%s", name, want, r.stderr)
		}
	}
}
