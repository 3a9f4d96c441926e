package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
)

// TestWorkflowCLI is the contract of the directory commands: exit codes,
// stdout, stderr and JSON, for success and each kind of failure.
func TestWorkflowCLI(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	dbFlag := []string{"--database-url", url}
	dir := t.TempDir()
	writeFile(t, dir, "001_users.yaml", "operations:\n  - create_table: { name: users, columns: [{ name: id, type: bigserial, pk: true }, { name: email, type: text, nullable: false }] }\n")
	writeFile(t, dir, "002_rename.yaml", "# rename\noperations:\n  - rename_column: { table: users, from: email, to: email_address }\n")

	bad := t.TempDir()
	writeFile(t, bad, "001_a.yaml", "operations:\n  - create_table: { name: a, columns: [{ name: id, type: int, pk: true }] }\n")
	writeFile(t, bad, "002_b.yaml", "operations:\n  - add_column: { table: nope, column: { name: x, type: int, nullable: true } }\n")
	writeFile(t, bad, "003_c.yaml", "operations:\n  - rename_column: { tabel: a, from: id, to: key }\n")
	dup := t.TempDir()
	writeFile(t, dup, "003_a.yaml", "operations:\n  - create_table: { name: a, columns: [{ name: id, type: int, pk: true }] }\n")
	writeFile(t, dup, "003_a.json", `{"operations": [{"create_table": {"name": "b", "columns": [{"name": "id", "type": "int", "pk": true}]}}]}`)
	mixed := t.TempDir()
	writeFile(t, mixed, "001_a.yaml", "operations:\n  - create_table: { name: m, columns: [{ name: id, type: int, pk: true }] }\n")
	writeFile(t, mixed, "002_sql.yaml", "operations:\n  - sql: { up: CREATE TABLE other (id int), down: DROP TABLE other }\n")

	steps := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string
	}{
		{"validate offline", []string{"validate", dir, "--offline"}, 0, []string{"valid: 2 file(s) checked offline"}, nil},
		{"validate all invalid files", []string{"validate", bad, "--offline"}, 2, nil, []string{filepath.Join(bad, "002_b.yaml") + `: operation 1 (add_column): field "table"`, filepath.Join(bad, "003_c.yaml") + `: operation 1 (rename_column): field "tabel"`}},
		{"validate with the database", []string{"validate", dir}, 0, []string{"checked against the live database"}, nil},
		{"migrate duplicate names", []string{"migrate", dup}, 2, nil, []string{"003_a.yaml", "same name as 003_a.json", "nothing was changed"}},
		{"migrate empty dir", []string{"migrate", t.TempDir()}, 2, nil, []string{"holds no migration files"}},
		{"window refuses sql mixed with others", []string{"migrate", mixed, "--window"}, 2, nil, []string{`"sql" operation must be alone`}},
		{"migrate one by one", []string{"migrate", dir, "--one-by-one"}, 0, []string{"applied 2 file(s)", "002_rename is in progress", "SET search_path TO public_002_rename"}, []string{"001_users.yaml: completed", "002_rename.yaml: started"}},
		{"migrate again", []string{"migrate", dir}, 0, []string{"nothing pending: 002_rename is in progress"}, nil},
		{"status table", []string{"status", dir}, 0, []string{"001_users.yaml", "applied", "002_rename.yaml", "in_progress", "ROWS BACKFILLED"}, nil},
		{"create", []string{"create", dir, "add_nick"}, 0, []string{filepath.Join(dir, "003_add_nick.yaml")}, nil},
		{"the template is not a migration yet", []string{"validate", dir, "--offline"}, 2, nil, []string{"003_add_nick.yaml", "no operations"}},
	}
	run := func(s struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string
	}) cliResult {
		t.Helper()
		r := runCLI(t, append(s.args, dbFlag...)...)
		expectCLI(t, s.name, r, s.code, s.stdout, s.stderr)
		return r
	}
	for _, s := range steps {
		run(s)
	}
	pgtest.Exec(t, db, "SELECT 1 FROM pg_class WHERE relname = 'users'")
	if got := pgtest.QueryStrings(t, db, "SELECT count(*) FROM pg_class WHERE relname IN ('m', 'other')"); got[0] != "0" {
		t.Fatalf("the refused window changed the database: %v", got)
	}

	// Fill the new file, then status --json and migrate --complete.
	writeFile(t, dir, "003_add_nick.yaml", "operations:\n  - add_column: { table: users, column: { name: nick, type: text, nullable: true } }\n")
	r := runCLI(t, append([]string{"status", dir, "--json"}, dbFlag...)...)
	var st struct {
		Latest string `json:"latest"`
		Files  []struct {
			Name, State, Checksum string
		} `json:"files"`
		History []map[string]any `json:"history"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("status --json: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if len(st.Files) != 3 || st.Files[0].Name != "001_users" || st.Files[0].State != "applied" || st.Files[1].State != "in_progress" || st.Files[2].State != "pending" ||
		st.Latest != "public_002_rename" || len(st.History) != 2 || len(st.Files[2].Checksum) != 64 {
		t.Fatalf("status --json: %+v", st)
	}
	for _, s := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string
	}{
		{"migrate --complete --json", []string{"migrate", dir, "--complete", "--json"}, 0, []string{`"completed": [`, `"002_rename.yaml"`, `"003_add_nick.yaml"`, `"latest": "public_003_add_nick"`}, nil},
		{"plan says what revert can undo", []string{"plan", writeFile(t, t.TempDir(), "9_drop.yaml", "operations:\n  - rename_column: { table: users, from: nick, to: nickname }\n  - drop_column: { table: users, column: email_address, down: \"'x'\" }\n")}, 0,
			[]string{"operation 1 (rename_column): revertible", "operation 2 (drop_column): NOT revertible: drops a column"}, nil},
		{"revert", []string{"revert"}, 0, []string{"revert revert_003_add_nick started"}, nil},
		{"migrate while a revert is in progress", []string{"migrate", dir}, 3, nil, []string{`migration "revert_003_add_nick" is in progress and is not a file of this directory`}},
		{"complete the revert", []string{"complete"}, 0, nil, nil},
		{"status after revert", []string{"status", dir}, 0, []string{"003_add_nick.yaml  pending"}, nil},
	} {
		run(s)
	}
	if got := pgtest.QueryStrings(t, db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'nick'"); got[0] != "0" {
		t.Fatalf("revert should have dropped nick: %v", got)
	}

	// Pull into a fresh clone; then a differing file is not overwritten.
	clone := t.TempDir()
	run(struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string
	}{"pull", []string{"pull", clone}, 0, []string{filepath.Join(clone, "001_users.yaml"), filepath.Join(clone, "002_rename.yaml")}, []string{"pulled 2 file(s)"}})
	body, err := os.ReadFile(filepath.Join(clone, "002_rename.yaml"))
	if err != nil || !strings.Contains(string(body), "rename_column:") || !strings.Contains(string(body), "to: email_address") {
		t.Fatalf("pulled 002: %v\n%s", err, body)
	}
	writeFile(t, clone, "002_rename.yaml", "operations:\n  - rename_column: { table: users, from: email, to: mail }\n")
	for _, s := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string
	}{
		{"pull does not overwrite", []string{"pull", clone}, 2, nil, []string{"002_rename.yaml: differs from the applied version; pull --force overwrites it"}},
		{"an edited applied file is refused", []string{"migrate", clone}, 2, nil, []string{"002_rename.yaml was applied", "content changed", "nothing was changed"}},
		{"status shows it modified", []string{"status", clone}, 0, []string{"002_rename.yaml  modified"}, nil},
		{"pull --force", []string{"pull", clone, "--force"}, 0, []string{filepath.Join(clone, "002_rename.yaml")}, []string{"pulled 1 file(s), 1 already up to date"}},
		{"then it is applied again", []string{"status", clone}, 0, []string{"002_rename.yaml  applied"}, nil},
	} {
		run(s)
	}
}

// TestBaselineCLI adopts online on a database another tool built.
func TestBaselineCLI(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)", "INSERT INTO users (email) VALUES ('a@x')")
	dbFlag := []string{"--database-url", url}
	dir := t.TempDir()
	writeFile(t, dir, "001_users.yaml", "operations:\n  - create_table: { name: users, columns: [{ name: id, type: bigserial, pk: true }, { name: email, type: text, nullable: false }] }\n")
	writeFile(t, dir, "002_rename.yaml", "operations:\n  - rename_column: { table: users, from: email, to: email_address }\n")
	for _, s := range []struct {
		args   []string
		code   int
		stdout string
	}{
		{[]string{"baseline", "--up-to", "001_users.yaml"}, 2, ""},
		{[]string{"baseline", dir, "--up-to", "009_nope.yaml"}, 2, ""},
		{[]string{"baseline", dir, "--up-to", "001_users.yaml"}, 0, "marked as applied without running them: 001_users.yaml"},
		{[]string{"status", dir}, 0, "001_users.yaml   applied"},
		{[]string{"revert"}, 2, ""},
		{[]string{"migrate", dir, "--complete"}, 0, "applied 1 file(s)"},
		{[]string{"baseline"}, 1, ""},
	} {
		r := runCLI(t, append(s.args, dbFlag...)...)
		if r.code != s.code || !strings.Contains(r.stdout, s.stdout) {
			t.Fatalf("%v: exit %d, want %d; stdout lacks %q?\n%s\n%s", s.args, r.code, s.code, s.stdout, r.stdout, r.stderr)
		}
	}
	pgtest.Exec(t, db, "SELECT email_address FROM users")
	if got := pgtest.QueryStrings(t, db, "SELECT name || ':' || kind FROM online.migrations ORDER BY started_at, name"); len(got) != 3 || !strings.HasSuffix(got[0], ":baseline") || got[1] != "001_users:baseline" || got[2] != "002_rename:migration" {
		t.Fatalf("history: %v", got)
	}
}
