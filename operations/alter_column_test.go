package operations

import (
	"fmt"
	"strings"
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestAlterColumnCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"alter_column default", "- alter_column: {table: users, column: age, default: '18'}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			wantSQL(t, "contract", p.Contract, `ALTER TABLE "public"."users" ALTER COLUMN "age" SET DEFAULT 18`)
			for _, c := range view(p, "users").Columns {
				if c.Name == "age" && (c.Default == nil || *c.Default != "18") {
					t.Errorf("view default of age: %v", deref(c.Default))
				}
			}
		}},
		{"alter_column default null", "- alter_column: {table: users, column: age, default: null}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			wantSQL(t, "contract", p.Contract, `ALTER TABLE "public"."users" ALTER COLUMN "age" DROP DEFAULT`)
			for _, c := range view(p, "users").Columns {
				if c.Name == "age" && (c.Default == nil || *c.Default != "NULL") {
					t.Errorf("view default of age: %v, want NULL", deref(c.Default))
				}
			}
		}},
		{"alter_column default absent", "- alter_column: {table: users, column: age, comment: years}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			for _, s := range allSQL(p.Contract) {
				if strings.Contains(s, "DEFAULT") {
					t.Errorf("absent default changed the default: %s", s)
				}
			}
			wantSQL(t, "contract", p.Contract, `COMMENT ON COLUMN "public"."users"."age" IS 'years'`)
		}},
		{"alter_column comment null", "- alter_column: {table: users, column: age, comment: null}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			wantSQL(t, "contract", p.Contract, `COMMENT ON COLUMN "public"."users"."age" IS NULL`)
		}},
		{"alter_column drop NOT NULL", "- alter_column: {table: users, column: bio, nullable: true}", nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			wantSQL(t, "expand", p.Expand, `ALTER TABLE "public"."users" ALTER COLUMN "bio" DROP NOT NULL`)
			eq(t, "undo", p.Expand[0].Undo[0], `ALTER TABLE "public"."users" ALTER COLUMN "bio" SET NOT NULL`)
			eq(t, "model", ns.Tables["users"].Column("bio").Nullable, true)
		}},
		{"alter_column type", "- alter_column: {table: users, column: age, type: bigint}", nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			if len(p.Backfill) != 1 || p.Backfill[0].Table != "users" {
				t.Fatalf("backfill %+v, want one of users", p.Backfill)
			}
			eq(t, "key", fmt.Sprint(p.Backfill[0].Key), "[{id bigint}]")
			eq(t, "model", ns.Tables["users"].Column("age").Type, "bigint")
			wantSQL(t, "contract", p.Contract, `RENAME COLUMN`)
		}},
		{"up and down whose names the model cannot judge compile", `- alter_column: {table: users, column: team_id, up: "(SELECT t.id FROM teams t WHERE t.name = nickname)", down: team_id}
- alter_column: {table: users, column: age, type: bigint, up: "CASE WHEN age IS UNKNOWN THEN 0 ELSE age END", down: "users.age"}`, nil, func(t *testing.T, p *Plan, _ *schema.Schema) {}},
	})
}

func TestAlterColumnCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Missing tables and columns.
		{name: "missing column to alter", ops: "- alter_column: {table: users, column: nope, nullable: true}", op: 1, kind: "alter_column", field: "column"},
		// Names already taken.
		{name: "alter_column rename to an existing column", ops: "- alter_column: {table: users, column: nickname, name: email}", op: 1, kind: "alter_column", field: "name", msg: []string{`already has a column "email"`}},
		// Data the new version would break.
		{name: "rewrite a table without a key", ops: "- alter_column: {table: logs, column: line, type: varchar(10)}", op: 1, kind: "alter_column", field: "table", msg: []string{"primary key"}},
		// Fields.
		{name: "alter_column changes nothing", ops: "- alter_column: {table: users, column: email}", op: 1, kind: "alter_column", field: "column", msg: []string{"changes nothing"}},
		// Fields.
		{name: "alter_column check without name", ops: "- alter_column: {table: users, column: age, check: {constraint: age > 0}}", op: 1, kind: "alter_column", field: "check"},
		// Fields.
		{name: "alter_column default is a list", ops: "- alter_column: {table: users, column: age, default: [1]}", op: 1, kind: "alter_column", field: "default"},
		// Fields.
		{name: "alter_column comment is a map", ops: "- alter_column: {table: users, column: age, comment: {a: b}}", op: 1, kind: "alter_column", field: "comment"},
		// Fields.
		{name: "alter_column bad match_type", ops: "- alter_column: {table: users, column: team_id, references: {name: f, table: teams, column: id, match_type: PARTIAL}}", op: 1, kind: "alter_column", field: "references.match_type"},
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "up names a missing column", ops: "- alter_column: {table: users, column: age, type: bigint, up: \"agee::bigint\", down: age}", op: 1, kind: "alter_column", field: "up", msg: []string{`column "agee" does not exist in table "users"`, "old version"}},
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "down names a missing column", ops: "- alter_column: {table: users, column: age, type: bigint, up: age, down: \"years::int\"}", op: 1, kind: "alter_column", field: "down", msg: []string{`column "years" does not exist`, "new version"}},
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "up names the column's new name", ops: "- alter_column: {table: users, column: nickname, name: nick, type: varchar(50), up: nick, down: nick}", op: 1, kind: "alter_column", field: "up", msg: []string{`column "nick" does not exist`}},
	})
}
