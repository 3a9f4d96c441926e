package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
)

// With --json, a command that fails prints one JSON object on stdout (and
// only one): its exit code, the error, and what it changed or left.
// Objects others made in a version schema stop complete and rollback with
// exit 6 and are listed there.
func TestFailureJSON(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)", "INSERT INTO users (email) VALUES ('a@x'), ('a@x')",
		"CREATE TYPE mood AS ENUM ('sad', 'ok')")
	dir := t.TempDir()
	typo := writeFile(t, dir, "01_typo.yaml", "operations:\n  - rename_column: { table: users, form: email, to: x }\n")
	enumThenFail := writeFile(t, dir, "02_enum.yaml", "operations:\n  - add_enum_value: { enum: mood, value: happy }\n  - create_index: { table: users, name: users_email_uniq, columns: [email], unique: true }\n")
	good := writeFile(t, dir, "03_good.yaml", "version_schema: good\noperations:\n  - add_column: { table: users, column: { name: tier, type: text, nullable: true } }\n")
	db2 := []string{"--database-url", url, "--json"}

	type object struct {
		Command        string   `json:"command"`
		ExitCode       int      `json:"exit_code"`
		Error          string   `json:"error"`
		NothingChanged *bool    `json:"nothing_changed"`
		Undone         *bool    `json:"undone"`
		LeftInPlace    []string `json:"left_in_place"`
		Dependents     []struct {
			Kind, Identity, Owner string
		} `json:"dependents"`
	}
	steps := []struct {
		name   string
		args   []string
		before func()
		code   int
		check  func(o object) bool
	}{
		{name: "bad file", args: []string{"start", typo}, code: 2,
			check: func(o object) bool {
				return o.NothingChanged != nil && *o.NothingChanged && strings.Contains(o.Error, `field "form"`)
			}},
		{name: "nothing in progress", args: []string{"rollback"}, code: 4,
			check: func(o object) bool { return o.NothingChanged != nil && *o.NothingChanged }},
		{name: "failed start leaves the enum value", args: []string{"start", enumThenFail}, code: 1,
			check: func(o object) bool {
				return o.Undone != nil && *o.Undone && o.NothingChanged != nil && !*o.NothingChanged &&
					len(o.LeftInPlace) == 1 && strings.Contains(o.LeftInPlace[0], "mood")
			}},
		{name: "rollback refused over an application's table", args: []string{"rollback"}, code: 6,
			before: func() {
				if r := runCLI(t, "start", good, "--database-url", url); r.code != 0 {
					t.Fatalf("start: %d %s", r.code, r.stderr)
				}
				pgtest.Exec(t, db, "CREATE TABLE public_good.app_sessions (id int)")
			},
			check: func(o object) bool {
				return o.NothingChanged != nil && *o.NothingChanged && len(o.Dependents) == 1 &&
					o.Dependents[0].Kind == "table" && o.Dependents[0].Identity == "public_good.app_sessions" && o.Dependents[0].Owner == "postgres"
			}},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		r := runCLI(t, append(s.args, db2...)...)
		if r.code != s.code {
			t.Fatalf("%s: exit %d, want %d\nstderr: %s", s.name, r.code, s.code, r.stderr)
		}
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		var o object
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("%s: stdout is not a JSON object: %v\n%s", s.name, err, r.stdout)
		}
		if dec.More() {
			t.Fatalf("%s: more than one JSON object on stdout:\n%s", s.name, r.stdout)
		}
		if o.ExitCode != s.code || o.Command != s.args[0] || o.Error == "" || !s.check(o) {
			t.Fatalf("%s: stdout %s", s.name, r.stdout)
		}
	}
	// --drop-dependents goes through and names what it dropped.
	r := runCLI(t, "rollback", "--drop-dependents", "--database-url", url)
	if r.code != 0 || !strings.Contains(r.stdout, "dropped, as --drop-dependents asked: table public_good.app_sessions (owner postgres)") {
		t.Fatalf("rollback --drop-dependents: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
