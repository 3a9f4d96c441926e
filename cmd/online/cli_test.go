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
		if r.code != s.code {
			t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", s.name, r.code, s.code, r.stdout, r.stderr)
		}
		for _, want := range s.stdout {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("%s: stdout lacks %q:\n%s", s.name, want, r.stdout)
			}
		}
		for _, want := range s.stderr {
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("%s: stderr lacks %q:\n%s", s.name, want, r.stderr)
			}
		}
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
