package operations_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// collationOf is the query for a column's collation, NULL when it is its
// type's.
const collationOf = `SELECT coalesce((SELECT collname FROM pg_collation WHERE oid = a.attcollation AND a.attcollation <> t.typcollation), 'default')
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1::regclass AND a.attname = $2`

// TestCollationLifecycle: the collation field (ext) of a column, in
// create_table, add_column and alter_column, through both versions; and a
// rewrite for another reason keeps the column's own collation.
func TestCollationLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.RunAll(t, []lifecycletest.Case{
		{
			Name: "create_table_with_collation",
			YAML: `
operations:
  - create_table:
      name: tags
      columns:
        - { name: id, type: int, pk: true }
        - { name: label, type: text, collation: C }
`,
			During: func(e *env, _, nw *pgx.Conn, _ bool) {
				e.Exec(nw, "INSERT INTO tags VALUES (1, 'b'), (2, 'B'), (3, 'a') ON CONFLICT DO NOTHING")
				// "C" orders upper case first, whatever the database's default.
				e.ExpectRows(nw, []string{"B", "a", "b"}, "SELECT label FROM tags ORDER BY label")
			},
			After: func(e *env, _ *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"C"}, collationOf, "public.tags", "label")
			},
		},
		{
			Name: "add_column_with_collation",
			YAML: `
operations:
  - add_column: { table: users, column: { name: handle, type: text, nullable: true, collation: C } }
  - add_column:
      table: users
      column: { name: domain, type: text, nullable: false, collation: POSIX }
      up: "split_part(email, '@', 2)"
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.Exec(old, "INSERT INTO users (email) VALUES ('a@Z.example')")
				e.ExpectRows(nw, []string{"Z.example"}, "SELECT DISTINCT domain FROM users WHERE email = 'a@Z.example'")
				e.ExpectRows(nw, []string{"x"}, "INSERT INTO users (email, handle) VALUES ('n@y', 'x') RETURNING handle")
			},
			After: func(e *env, _ *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"C"}, collationOf, "public.users", "handle")
				e.ExpectRows(e.DB, []string{"POSIX"}, collationOf, "public.users", "domain")
			},
		},
		{
			Name: "alter_column_collation",
			YAML: `
operations:
  - alter_column: { table: users, column: name, collation: C }
`,
			During: func(e *env, old, nw *pgx.Conn, _ bool) {
				e.Exec(old, "UPDATE users SET name = 'Renamed' WHERE id = 2")
				e.ExpectRows(nw, []string{"Renamed"}, "SELECT name FROM users WHERE id = 2")
				e.Exec(nw, "UPDATE users SET name = 'back' WHERE id = 3")
				e.ExpectRows(old, []string{"back"}, "SELECT name FROM users WHERE id = 3")
			},
			After: func(e *env, _ *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"C"}, collationOf, "public.users", "name")
				e.ExpectRows(e.DB, []string{"n1"}, "SELECT name FROM users WHERE id = 1")
			},
		},
		{
			Name:  "rewrite_keeps_the_columns_collation",
			Setup: []string{`ALTER TABLE users ALTER COLUMN legacy TYPE text COLLATE "C"`},
			YAML: `
operations:
  - alter_column: { table: users, column: legacy, nullable: false, up: "coalesce(legacy, 'none')" }
`,
			After: func(e *env, _ *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"C"}, collationOf, "public.users", "legacy")
			},
		},
		{
			Name:  "type_change_with_collation",
			Setup: []string{`ALTER TABLE users ALTER COLUMN legacy TYPE text COLLATE "C"`},
			YAML: `
operations:
  - alter_column: { table: users, column: legacy, type: varchar(40), collation: POSIX }
`,
			After: func(e *env, _ *pgx.Conn) {
				e.ExpectRows(e.DB, []string{"POSIX"}, collationOf, "public.users", "legacy")
			},
		},
	})
}
