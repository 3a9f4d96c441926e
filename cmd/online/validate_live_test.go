package main

import (
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
)

// validate against a live database says what start will say: the fields
// only the catalog can judge (a type, a function in an expression, a
// collation, an operator class, an access method) are exit 2 naming the
// file, the operation and the field; and start refuses them the same way
// before any change.
func TestValidateLiveRunsStartsChecks(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db, "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, v int)", "INSERT INTO users (email, v) VALUES ('a@x', 1)")
	dir := t.TempDir()
	cases := []struct {
		name, yaml, field, says string
	}{
		{"unknown type", "operations:\n  - add_column: { table: users, column: { name: n, type: bigintt, nullable: true } }\n", "column.type", "bigintt does not exist"},
		{"unknown function", "operations:\n  - alter_column: { table: users, column: v, type: bigint, up: \"nosuchfn(v)\", down: \"v::int\" }\n", "up", "nosuchfn"},
		{"unknown collation", "operations:\n  - create_index: { table: users, name: users_email_c, columns: [ { column: email, collate: no_such_coll } ] }\n", "columns[0].collate", "collation no_such_coll does not exist"},
		{"unknown column collation", "operations:\n  - add_column: { table: users, column: { name: n, type: text, nullable: true, collation: no_such_coll } }\n", "column.collation", "collation no_such_coll does not exist"},
		{"unknown collation in create_table", "operations:\n  - create_table: { name: t2, columns: [ { name: id, type: int, pk: true }, { name: s, type: text, collation: no_such_coll } ] }\n", "columns[1].collation", "collation no_such_coll does not exist"},
		{"unknown collation in alter_column", "operations:\n  - alter_column: { table: users, column: email, collation: no_such_coll }\n", "collation", "collation no_such_coll does not exist"},
		{"unknown operator class", "operations:\n  - create_index: { table: users, name: users_email_o, columns: [ { column: email, opclass: { name: no_such_ops } } ] }\n", "columns[0].opclass.name", "operator class no_such_ops does not exist"},
		{"unknown access method", "operations:\n  - create_constraint: { table: users, name: users_x, type: exclude, exclude: { index_method: nosuch_am, elements: \"email WITH =\" } }\n", "exclude.index_method", "access method nosuch_am does not exist"},
	}
	for i, c := range cases {
		file := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "_")+".yaml", c.yaml)
		for _, cmd := range []string{"validate", "start"} {
			r := runCLI(t, cmd, file, "--database-url", url)
			if r.code != 2 {
				t.Fatalf("%s: %s exit %d, want 2\nstderr: %s", c.name, cmd, r.code, r.stderr)
			}
			for _, w := range []string{"operation 1", `field "` + c.field + `"`, c.says} {
				if !strings.Contains(r.stderr, w) {
					t.Fatalf("%s: %s does not say %q:\n%s", c.name, cmd, w, r.stderr)
				}
			}
		}
		if got := pgtest.QueryStrings(t, db, "SELECT count(*) FROM online.migrations"); len(got) != 1 || got[0] != "0" {
			t.Fatalf("%s (%d): a migration was recorded: %v", c.name, i, got)
		}
	}
	if got := pgtest.QueryStrings(t, db, "SELECT count(*) FROM pg_indexes WHERE tablename = 'users'"); len(got) != 1 || got[0] != "1" {
		t.Fatalf("indexes on users: %v, want the primary key only", got)
	}
}
