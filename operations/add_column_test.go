package operations

import (
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestAddColumnCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"add_column", "- add_column: {table: users, column: {nullable: true, name: handle, type: text, comment: shown}}", nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			eq(t, "expand steps", len(p.Expand), 1)
			eq(t, "expand", p.Expand[0].SQL[0], `ALTER TABLE "public"."users" ADD COLUMN "handle" text`)
			wantSQL(t, "expand", p.Expand, `COMMENT ON COLUMN "public"."users"."handle" IS 'shown'`)
			eq(t, "undo", p.Expand[0].Undo[0], `ALTER TABLE "public"."users" DROP COLUMN IF EXISTS "handle"`)
			eq(t, "op", p.Expand[0].Op, 1)
			eq(t, "view", viewColumns(view(p, "users")), "id, email, nickname, age, bio, team_id, handle")
			eq(t, "model", ns.Tables["users"].Column("handle").Type, "text")
		}},
		{"add_column with constraints", "- add_column: {table: users, column: {nullable: true, name: handle, type: text, default: \"'x'\", unique: true, check: {name: handle_len, constraint: length(handle) < 20}, references: {name: handle_fk, table: teams, column: name}}}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			eq(t, "expand", p.Expand[0].SQL[0], `ALTER TABLE "public"."users" ADD COLUMN "handle" text DEFAULT 'x'`)
			wantSQL(t, "finish", p.Finish,
				`CREATE UNIQUE INDEX CONCURRENTLY "users_handle_key" ON "public"."users" ("handle")`,
				`ALTER TABLE "public"."users" ADD CONSTRAINT "handle_len" CHECK (length("handle") < 20) NOT VALID`,
				`ALTER TABLE "public"."users" VALIDATE CONSTRAINT "handle_len"`,
				`ADD CONSTRAINT "handle_fk" FOREIGN KEY ("handle") REFERENCES "public"."teams" ("name")`,
				`VALIDATE CONSTRAINT "handle_fk"`)
			wantSQL(t, "contract", p.Contract, `ALTER TABLE "public"."users" ADD CONSTRAINT "users_handle_key" UNIQUE USING INDEX "users_handle_key"`)
		}},
		{"a NOT NULL serial needs no up", "- add_column: {table: users, column: {name: n, type: bigserial}}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			wantSQL(t, "expand", p.Expand, `ADD COLUMN "n" bigserial NOT NULL`)
		}},
	})
}

func TestAddColumnCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Missing tables and columns.
		{name: "missing table", ops: "- add_column: {table: nope, column: {nullable: true, name: a, type: int}}", op: 1, kind: "add_column", field: "table", msg: []string{`table "nope" does not exist`}},
		// Missing tables and columns.
		{name: "missing referenced table", ops: "- add_column: {table: users, column: {nullable: true, name: a, type: int, references: {name: f, table: nope, column: id}}}", op: 1, kind: "add_column", field: "column.references.table"},
		// What earlier operations of the same migration did.
		{name: "table renamed earlier", ops: "- rename_table: {from: users, to: accounts}\n- add_column: {table: users, column: {nullable: true, name: a, type: int}}", op: 2, kind: "add_column", field: "table", msg: []string{`table "users" is no longer in the new version`, "renamed or dropped"}},
		// Names already taken.
		{name: "unique constraint name of a new column", ops: "- create_index: {table: users, name: users_handle_key, columns: [age]}\n- add_column: {table: users, column: {nullable: true, name: handle, type: text, unique: true}}", op: 2, kind: "add_column", field: "column.unique"},
		// Names already taken.
		{name: "add an existing column", ops: "- add_column: {table: users, column: {nullable: true, name: email, type: text}}", op: 1, kind: "add_column", field: "column.name", msg: []string{`already has a column "email"`}},
		// Data the new version would break.
		{name: "add NOT NULL column without default or up", ops: "- add_column: {table: users, column: {name: a, type: int, nullable: false}}", op: 1, kind: "add_column", field: "up", msg: []string{`"up"`}},
		// Data the new version would break.
		{name: "add a primary key column", ops: "- add_column: {table: users, column: {name: a, type: int, pk: true}}", op: 1, kind: "add_column", field: "column.pk"},
		// Fields.
		{name: "column without name", ops: "- add_column: {table: users, column: {nullable: true, type: int}}", op: 1, kind: "add_column", field: "column.name", msg: []string{"is required"}},
		// pgroll's default: without nullable a column is NOT NULL.
		{name: "add a column without nullable, default or up", ops: "- add_column: {table: users, column: {name: a, type: int}}", op: 1, kind: "add_column", field: "up", msg: []string{`column "a" is NOT NULL`, `without "nullable: true"`, `give "up"`}},
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "add_column up names a missing column", ops: "- add_column: {table: users, up: \"lower(mail)\", column: {name: a, type: text}}", op: 1, kind: "add_column", field: "up", msg: []string{`"mail"`}},
	})
}
