package operations

import (
	"strings"
	"testing"
)

// TestTriggerFunctionSearchPath checks which rewrites get trigger functions
// that run under the writer's search_path (no SET clause, cheaper per row)
// and which keep it pinned to the table's schema: only conversions that use
// nothing but pg_catalog may go unpinned, whatever else the database holds.
func TestTriggerFunctionSearchPath(t *testing.T) {
	s, _ := catalog(t, "public",
		`CREATE FUNCTION slugify(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower($1) $$`,
		`CREATE TYPE mood AS ENUM ('sad', 'happy')`,
		`CREATE FUNCTION cat(text, text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT $1 || $2 $$`,
		`CREATE OPERATOR <~> (LEFTARG = text, RIGHTARG = text, FUNCTION = cat)`,
		`CREATE SCHEMA ext`,
		`CREATE FUNCTION ext.shout(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper($1) $$`,
		`CREATE TEXT SEARCH CONFIGURATION my_english (COPY = english)`,
		`CREATE TABLE users (id bigserial PRIMARY KEY, email text, feeling text, score int, note text)`,
		`CREATE TABLE tags (name text)`,
	)
	cases := []struct {
		name   string
		op     string
		pinned bool
	}{
		{"catalog function", `alter_column: {table: users, column: email, up: "lower(email)", down: "email"}`, false},
		{"cast and arithmetic", `alter_column: {table: users, column: score, type: bigint, up: "score::bigint * 2", down: "(score / 2)::int"}`, false},
		{"catalog literal", `alter_column: {table: users, column: note, up: "coalesce(note, 'none')", down: "note"}`, false},
		{"catalog text search config", `alter_column: {table: users, column: note, up: "to_tsvector('english', note)::text", down: "note"}`, false},
		{"user function", `alter_column: {table: users, column: email, up: "slugify(email)", down: "email"}`, true},
		{"function of another schema", `alter_column: {table: users, column: email, up: "ext.shout(email)", down: "email"}`, true},
		{"user type", `alter_column: {table: users, column: feeling, type: mood, up: "feeling::mood", down: "feeling::text"}`, true},
		{"user operator", `alter_column: {table: users, column: email, up: "email <~> 'x'", down: "email"}`, true},
		{"subquery", `alter_column: {table: users, column: score, up: "(SELECT count(*) FROM tags)::int", down: "score"}`, true},
		{"relation in a literal", `alter_column: {table: users, column: score, type: bigint, up: "nextval('users_id_seq')", down: "score"}`, true},
		{"user text search config", `alter_column: {table: users, column: note, up: "to_tsvector('my_english', note)::text", down: "note"}`, true},
		{"added column", `add_column: {table: users, up: "upper(email)", column: {name: shout, type: text, nullable: true}}`, false},
		{"dropped column down", `drop_column: {table: users, column: note, down: "slugify(email)"}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, _, err := compileYAML(t, s, publicOpts, "  - "+tc.op+"\n")
			if err != nil {
				t.Fatal(err)
			}
			var fns []string
			for _, stmt := range allSQL(plan.Expand) {
				if strings.HasPrefix(stmt, "CREATE FUNCTION") && strings.Contains(stmt, "RETURNS trigger") {
					fns = append(fns, stmt)
				}
			}
			if len(fns) == 0 {
				t.Fatalf("no trigger function in the plan:\n%s", plan)
			}
			for _, fn := range fns {
				if got := strings.Contains(fn, "SET search_path"); got != tc.pinned {
					t.Errorf("pinned search_path = %v, want %v:\n%s", got, tc.pinned, fn)
				}
			}
		})
	}
}
