package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
)

// TestTeamStartFileOfFolder: `online start FILE` on a file of the folder
// does not block the folder (issue 22, case 2): validate of the next file
// does not call the first missing, migrate DIR takes the started file for
// the folder's, status agrees, and pull writes both files.
func TestTeamStartFileOfFolder(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := []string{"--database-url", url}
	dir := t.TempDir()
	a := writeFile(t, dir, "01_a.yaml", "operations:\n  - create_table: { name: users, columns: [{ name: id, type: bigserial, pk: true }, { name: email, type: text, nullable: true }] }\n")
	b := writeFile(t, dir, "02_b.yaml", "# the nick\noperations:\n  - add_column: { table: users, column: { name: nick, type: text, nullable: true } }\n")

	expectCLI(t, "start --complete 01_a", runCLI(t, append([]string{"start", "--complete", a}, db...)...), 0, nil, nil)
	expectCLI(t, "validate the next file alone", runCLI(t, append([]string{"validate", b}, db...)...), 0, []string{"valid: 1 file(s) checked against the live database"}, nil)
	expectCLI(t, "start 02_b", runCLI(t, append([]string{"start", b}, db...)...), 0, nil, nil)
	expectCLI(t, "migrate the folder", runCLI(t, append([]string{"migrate", dir}, db...)...), 0, []string{"nothing pending: 02_b is in progress"}, nil)

	r := runCLI(t, append([]string{"status", dir, "--json"}, db...)...)
	expectCLI(t, "status", r, 0, nil, nil)
	var st struct {
		Files []struct {
			Name, State, Checksum, Applied_checksum string
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if len(st.Files) != 2 || st.Files[0].State != "applied" || st.Files[1].State != "in_progress" || st.Files[1].Checksum != st.Files[1].Applied_checksum {
		t.Fatalf("status of the folder: %+v", st.Files)
	}
	expectCLI(t, "complete", runCLI(t, append([]string{"complete"}, db...)...), 0, nil, nil)
	expectCLI(t, "migrate the folder again", runCLI(t, append([]string{"migrate", dir}, db...)...), 0, []string{"nothing to migrate"}, nil)

	// A new clone: pull writes both files, and they are the folder's.
	clone := t.TempDir()
	expectCLI(t, "pull", runCLI(t, append([]string{"pull", clone}, db...)...), 0, []string{"01_a.yaml", "02_b.yaml"}, []string{"pulled 2 file(s)"})
	for _, f := range []string{"01_a.yaml", "02_b.yaml"} {
		if _, err := os.Stat(filepath.Join(clone, f)); err != nil {
			t.Fatalf("pull: %v", err)
		}
	}
	expectCLI(t, "migrate the clone", runCLI(t, append([]string{"migrate", clone}, db...)...), 0, []string{"nothing to migrate"}, nil)
}

// TestTeamSchemaDriftCLI: an ALTER TABLE run by hand is reported by
// status DIR (text and --json) and refused by validate (exit 2).
func TestTeamSchemaDriftCLI(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	conn := pgtest.Connect(t, url)
	db := []string{"--database-url", url}
	dir := t.TempDir()
	writeFile(t, dir, "01_a.yaml", "operations:\n  - create_table: { name: users, columns: [{ name: id, type: bigserial, pk: true }, { name: email, type: text, nullable: true }] }\n")
	writeFile(t, dir, "02_b.yaml", "operations:\n  - add_column: { table: users, column: { name: nick, type: text, nullable: true } }\n")
	expectCLI(t, "migrate", runCLI(t, append([]string{"migrate", "--complete", dir}, db...)...), 0, nil, nil)
	expectCLI(t, "validate", runCLI(t, append([]string{"validate", dir}, db...)...), 0, []string{"valid"}, nil)

	pgtest.Exec(t, conn, "ALTER TABLE users ADD COLUMN added_by_hand int")
	expectCLI(t, "status with drift", runCLI(t, append([]string{"status", dir}, db...)...), 0,
		[]string{"schema changed outside online since 02_b:", "column users.added_by_hand was added outside online (integer)"}, nil)
	r := runCLI(t, append([]string{"status", dir, "--json"}, db...)...)
	var st struct {
		SchemaDrift struct {
			Since string `json:"since"`
			Drift []struct{ Object, Change, Live string }
		} `json:"schema_drift"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st.SchemaDrift.Since != "02_b" || len(st.SchemaDrift.Drift) != 1 || st.SchemaDrift.Drift[0].Object != "column users.added_by_hand" || st.SchemaDrift.Drift[0].Change != "added" {
		t.Fatalf("status --json drift: %+v", st.SchemaDrift)
	}
	expectCLI(t, "validate with drift", runCLI(t, append([]string{"validate", dir}, db...)...), 2, nil,
		[]string{"schema public changed outside online since 02_b", "column users.added_by_hand was added outside online"})

	// The team records the change: pull --drift writes it as the next file,
	// applied here; the folder is the truth again.
	expectCLI(t, "pull --drift", runCLI(t, append([]string{"pull", dir, "--drift"}, db...)...), 0, []string{filepath.Join(dir, "03_drift.yaml")}, nil)
	expectCLI(t, "status after pull --drift", runCLI(t, append([]string{"status", dir}, db...)...), 0, []string{"03_drift.yaml", "baseline"}, nil)
	if r := runCLI(t, append([]string{"status", dir}, db...)...); strings.Contains(r.stdout, "outside online") {
		t.Fatalf("status after pull --drift still reports drift:\n%s", r.stdout)
	}
	expectCLI(t, "validate after pull --drift", runCLI(t, append([]string{"validate", dir}, db...)...), 0, []string{"valid"}, nil)
	expectCLI(t, "pull --drift with none", runCLI(t, append([]string{"pull", dir, "--drift"}, db...)...), 2, nil, []string{"no drift to record"})
	// The next migration keeps the version in use live.
	writeFile(t, dir, "04_c.yaml", "operations:\n  - add_column: { table: users, column: { name: age, type: int, nullable: true } }\n")
	expectCLI(t, "migrate after pull --drift", runCLI(t, append([]string{"migrate", dir}, db...)...), 0, []string{"04_c is in progress"}, nil)
	if got := pgtest.QueryStrings(t, conn, "SELECT parent FROM online.migrations WHERE name = '04_c'"); got[0] != "public_02_b" {
		t.Fatalf("the old version of 04_c: %v", got)
	}
	// Another database applies the drift file as any other.
	other := pgtest.NewDB(t)
	expectCLI(t, "migrate another database", runCLI(t, "migrate", "--complete", dir, "--database-url", other), 0, nil, nil)
	if got := pgtest.QueryStrings(t, pgtest.Connect(t, other), "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attnum > 0 AND NOT attisdropped"); got[0] != "id,email,nick,added_by_hand,age" {
		t.Fatalf("the other database's users: %v", got)
	}
}

// TestTeamPlanFolder: plan DIR plans each pending file against the schema
// the ones before it build, and plan FILE does so for a file of a folder
// (case 7); nothing is changed.
func TestTeamPlanFolder(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	conn := pgtest.Connect(t, url)
	db := []string{"--database-url", url}
	dir := t.TempDir()
	writeFile(t, dir, "01_a.yaml", "operations:\n  - create_table: { name: users, columns: [{ name: id, type: bigserial, pk: true }] }\n")
	expectCLI(t, "migrate", runCLI(t, append([]string{"migrate", "--complete", dir}, db...)...), 0, nil, nil)
	writeFile(t, dir, "02_items.yaml", "operations:\n  - create_table: { name: items, columns: [{ name: id, type: bigserial, pk: true }, { name: name, type: text, nullable: true }] }\n")
	third := writeFile(t, dir, "03_title.yaml", "operations:\n  - rename_column: { table: items, from: name, to: title }\n")

	expectCLI(t, "plan the folder", runCLI(t, append([]string{"plan", dir}, db...)...), 0,
		[]string{"02_items.yaml (1 of 2 pending)", "03_title.yaml (2 of 2 pending)", "public_03_title", "revertible"}, nil)
	expectCLI(t, "plan a file after a pending one", runCLI(t, append([]string{"plan", third}, db...)...), 0,
		[]string{"public_03_title", "rename"}, nil)
	if got := pgtest.QueryStrings(t, conn, "SELECT count(*) FROM pg_class WHERE relname = 'items'"); got[0] != "0" {
		t.Fatalf("plan created the table: %v", got)
	}
}

// TestTeamNoDefaultDatabaseForWrites: a command that changes a database
// does not fall back on a default one (case 8); it says which database it
// changes; a command that only reads keeps the default.
func TestTeamNoDefaultDatabaseForWrites(t *testing.T) {
	// Not parallel: it clears the environment that names a database.
	url := pgtest.NewDB(t)
	server := pgtest.Connect(t, pgtest.ServerURL())
	for _, k := range []string{"DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGSSLMODE", "PGAPPNAME"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	writeFile(t, dir, "01_a.yaml", "operations:\n  - create_table: { name: team_no_default_db, columns: [{ name: id, type: bigserial, pk: true }] }\n")
	// Compared with before, not with none: the default database is the
	// server's own, where anything may have been left by others.
	const probe = "SELECT count(*) || ' ' || coalesce((SELECT count(*) FROM pg_namespace WHERE nspname IN ('online', 'public_01_a'))::text, '') FROM pg_class WHERE relname = 'team_no_default_db'"
	before := pgtest.QueryStrings(t, server, probe)
	for _, args := range [][]string{{"migrate", dir}, {"init"}, {"complete"}, {"rollback"}, {"revert"}} {
		expectCLI(t, "no database named: "+args[0], runCLI(t, args...), 2, nil, []string{"changes a database, and none was named", "--database-url"})
	}
	if got := pgtest.QueryStrings(t, server, probe); got[0] != before[0] {
		t.Fatalf("a command without a database changed the default one: tables named team_no_default_db and schemas online, public_01_a: %v before, %v after", before, got)
	}
	r := runCLI(t, "migrate", dir, "--database-url", url)
	expectCLI(t, "migrate with the database named", r, 0, nil, []string{`online: migrate: database "` + pgtest.DBName(t, url) + `" on `, "(from --database-url)"})
	t.Setenv("DATABASE_URL", url)
	expectCLI(t, "status reads the database of DATABASE_URL", runCLI(t, "status", dir), 0, []string{"01_a.yaml"}, nil)
	expectCLI(t, "complete with DATABASE_URL", runCLI(t, "complete"), 0, nil, []string{"(from DATABASE_URL)"})
}

// TestTeamHistory: online history lists every event, a rollback and a
// revert included, with who and the files (case 9).
func TestTeamHistory(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := []string{"--database-url", url}
	dir := t.TempDir()
	writeFile(t, dir, "01_a.yaml", "operations:\n  - create_table: { name: users, columns: [{ name: id, type: bigserial, pk: true }] }\n")
	writeFile(t, dir, "02_b.yaml", "operations:\n  - add_column: { table: users, column: { name: nick, type: text, nullable: true } }\n")
	for _, args := range [][]string{{"migrate", "--complete", dir}, {"revert"}, {"complete"}, {"migrate", dir}, {"rollback"}} {
		expectCLI(t, strings.Join(args, " "), runCLI(t, append(args, db...)...), 0, nil, nil)
	}
	r := runCLI(t, append([]string{"history", "--json"}, db...)...)
	expectCLI(t, "history --json", r, 0, nil, nil)
	var evs []struct {
		Event, Migration, Kind, Reverts, Applied_by string
		Files                                       []string
		Undone                                      bool
	}
	if err := json.Unmarshal([]byte(r.stdout), &evs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, r.stdout)
	}
	var got []string
	for _, ev := range evs {
		s := ev.Event + " " + ev.Migration + " " + ev.Kind + " " + strings.Join(ev.Files, ",") + " " + ev.Applied_by
		if ev.Reverts != "" {
			s += " reverts " + ev.Reverts
		}
		if ev.Undone {
			s += " undone"
		}
		got = append(got, s)
	}
	want := []string{
		"started 01_a migration 01_a.yaml postgres", "completed 01_a migration 01_a.yaml postgres",
		"started 02_b migration 02_b.yaml postgres undone", "completed 02_b migration 02_b.yaml postgres undone",
		"started revert_02_b revert  postgres reverts 02_b", "completed revert_02_b revert  postgres reverts 02_b",
		"started 02_b migration 02_b.yaml postgres", "rolled_back 02_b migration 02_b.yaml postgres",
	}
	// The rolled-back run leaves no record: only its rollback event.
	want = append(want[:6], want[7])
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	expectCLI(t, "history", runCLI(t, append([]string{"history"}, db...)...), 0, []string{"revert completed (undoes 02_b)", "rolled_back", "undone later"}, nil)
}

// TestTeamJSON: create, baseline and pull print JSON with --json (case 9).
func TestTeamJSON(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	conn := pgtest.Connect(t, url)
	db := []string{"--database-url", url}
	dir := t.TempDir()
	var created struct{ File string }
	r := runCLI(t, "create", dir, "users", "--json")
	expectCLI(t, "create --json", r, 0, nil, nil)
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.File != filepath.Join(dir, "001_users.yaml") {
		t.Fatalf("create --json: %v %q", err, r.stdout)
	}
	writeFile(t, dir, "001_users.yaml", "operations:\n  - create_table: { name: users, columns: [{ name: id, type: bigserial, pk: true }] }\n")
	pgtest.Exec(t, conn, "CREATE TABLE users (id bigserial PRIMARY KEY)")
	var base struct {
		Baseline string
		Marked   []string
	}
	r = runCLI(t, append([]string{"baseline", dir, "--up-to", "001_users.yaml", "--json"}, db...)...)
	expectCLI(t, "baseline --json", r, 0, nil, nil)
	if err := json.Unmarshal([]byte(r.stdout), &base); err != nil || !strings.HasPrefix(base.Baseline, "baseline_") || len(base.Marked) != 1 {
		t.Fatalf("baseline --json: %v %q", err, r.stdout)
	}
	clone := t.TempDir()
	var pulled struct {
		Written  []string
		UpToDate int `json:"up_to_date"`
	}
	r = runCLI(t, append([]string{"pull", clone, "--json"}, db...)...)
	expectCLI(t, "pull --json", r, 0, nil, nil)
	if err := json.Unmarshal([]byte(r.stdout), &pulled); err != nil || len(pulled.Written) != 1 || pulled.Written[0] != filepath.Join(clone, "001_users.yaml") {
		t.Fatalf("pull --json: %v %q", err, r.stdout)
	}
}

// TestTeamConfigFile: online.yaml names the database and the directory,
// per environment; flags and environment variables win (case 9).
func TestTeamConfigFile(t *testing.T) {
	// Not parallel: it clears DATABASE_URL, which would win over the file.
	t.Setenv("DATABASE_URL", "")
	url := pgtest.NewDB(t)
	dir := t.TempDir()
	writeFile(t, dir, "01_a.yaml", "operations:\n  - create_table: { name: users, columns: [{ name: id, type: bigserial, pk: true }] }\n")
	cfg := writeFile(t, t.TempDir(), "online.yaml", `# the team's settings
database_url: postgres://nobody@nowhere.invalid/none
environments:
  test:
    database_url: `+url+`
    directory: `+dir+`
    lock_timeout: 300ms
`)
	expectCLI(t, "migrate from the config", runCLI(t, "migrate", "--config", cfg, "--env", "test"), 0,
		[]string{"01_a is in progress"}, []string{"(from " + cfg + " (environment test))"})
	expectCLI(t, "status from the config", runCLI(t, "status", dir, "--config", cfg, "--env", "test"), 0, []string{"01_a.yaml", "in_progress"}, nil)
	// A flag wins over the file.
	expectCLI(t, "complete with the flag", runCLI(t, "complete", "--config", cfg, "--database-url", url), 0, nil, []string{"(from --database-url)"})
	expectCLI(t, "unknown environment", runCLI(t, "status", "--config", cfg, "--env", "staging"), 2, nil, []string{`no environment "staging"`})
	bad := writeFile(t, t.TempDir(), "online.yaml", "databse_url: x\n")
	expectCLI(t, "unknown key", runCLI(t, "status", "--config", bad), 2, nil, []string{"databse_url", "not found"})
}
