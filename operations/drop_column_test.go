package operations

import (
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestDropColumnCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"drop_column", "- drop_column: {table: users, column: nickname}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			wantSQL(t, "contract", p.Contract, `ALTER TABLE "public"."users" DROP COLUMN "nickname"`)
			eq(t, "view", viewColumns(view(p, "users")), "id, email, age, bio, team_id")
		}},
		{"drop_column with a default needs no down", "- drop_column: {table: users, column: age}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			wantSQL(t, "contract", p.Contract, `DROP COLUMN "age"`)
		}},
		{"drop_column with down", "- drop_column: {table: sessions, column: token, down: \"'none'\"}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			if len(p.Expand) == 0 {
				t.Errorf("no expand step for down")
			}
			wantSQL(t, "contract", p.Contract, `ALTER TABLE "public"."sessions" DROP COLUMN "token"`)
		}},
	})
}

func TestDropColumnCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Missing tables and columns.
		{name: "missing column to drop", ops: "- drop_column: {table: users, column: nope}", op: 1, kind: "drop_column", field: "column", msg: []string{`"nope"`}},
		// What earlier operations of the same migration did.
		{name: "column renamed earlier", ops: "- rename_column: {table: users, from: email, to: email_address}\n- drop_column: {table: users, column: email}", op: 2, kind: "drop_column", field: "column", msg: []string{`column "email"`, "renamed or dropped"}},
		// Data the new version would break.
		{name: "drop NOT NULL column without down", ops: "- drop_column: {table: sessions, column: token}", op: 1, kind: "drop_column", field: "down", msg: []string{`column "token" is NOT NULL without a default`, `"down"`}},
		// Data the new version would break.
		{name: "drop NOT NULL unique column without down", ops: "- drop_column: {table: users, column: email}", op: 1, kind: "drop_column", field: "down", msg: []string{`"down"`}},
		// Data the new version would break.
		{name: "drop a primary key column", ops: "- drop_column: {table: sessions, column: id}", op: 1, kind: "drop_column", field: "column", msg: []string{"primary key"}},
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "drop_column down names a missing column", ops: "- drop_column: {table: sessions, column: token, down: \"tokn || 'x'\"}", op: 1, kind: "drop_column", field: "down", msg: []string{`"tokn"`}},
	})
}
