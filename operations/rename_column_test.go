package operations

import (
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestRenameColumnCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"rename_column", "- rename_column: {table: users, from: nickname, to: nick}", nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			eq(t, "expand steps", len(p.Expand), 0)
			wantSQL(t, "contract", p.Contract, `ALTER TABLE "public"."users" RENAME COLUMN "nickname" TO "nick"`)
			eq(t, "view", viewColumns(view(p, "users")), "id, email, nickname AS nick, age, bio, team_id")
			eq(t, "model", ns.Tables["users"].Column("nick").Physical, "nickname")
		}},
	})
}

func TestRenameColumnCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Missing tables and columns.
		{name: "missing column to rename", ops: "- rename_column: {table: users, from: nope, to: x}", op: 1, kind: "rename_column", field: "from", msg: []string{`column "nope" does not exist in table "users"`}},
		// What earlier operations of the same migration did.
		{name: "column dropped earlier", ops: "- drop_column: {table: users, column: nickname}\n- rename_column: {table: users, from: nickname, to: nick}", op: 2, kind: "rename_column", field: "from", msg: []string{`column "nickname" of table "users" is no longer in the new version`, "an earlier operation of this migration renamed or dropped it"}},
		// Names already taken.
		{name: "rename to an existing column", ops: "- rename_column: {table: users, from: nickname, to: email}", op: 1, kind: "rename_column", field: "to", msg: []string{`table "users" already has a column "email"`}},
		// Names already taken.
		{name: "rename to a column added earlier", ops: "- add_column: {table: users, column: {nullable: true, name: handle, type: text}}\n- rename_column: {table: users, from: nickname, to: handle}", op: 2, kind: "rename_column", field: "to", msg: []string{`"handle"`}},
		// Names already taken.
		{name: "rename to its own name", ops: "- rename_column: {table: users, from: email, to: email}", op: 1, kind: "rename_column", field: "to"},
		// Fields.
		{name: "rename_column without to", ops: "- rename_column: {table: users, from: email}", op: 1, kind: "rename_column", field: "to"},
	})
}
