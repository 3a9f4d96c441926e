package operations

import (
	"strings"
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestDropConstraintCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"drop_constraint", "- drop_constraint: {table: users, name: users_email_key, up: email, down: \"email || '-' || id\"}", nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			// The column is rewritten without the constraint: a new
			// column filled by up, the old one kept by down for the old
			// version, swapped at complete.
			wantSQL(t, "expand", p.Expand, `ALTER TABLE "public"."users" ADD COLUMN "_online_email" text`, `"_online_row"."email" := ("_online_d0" || '-' || id)`)
			if len(p.Backfill) != 1 || p.Backfill[0].Table != "users" {
				t.Fatalf("backfill %+v, want one of users", p.Backfill)
			}
			wantSQL(t, "contract", p.Contract, `RENAME COLUMN "_online_email" TO "email"`)
			for _, s := range allSQL(p.Contract) {
				if strings.Contains(s, `"users_email_key"`) && strings.Contains(s, "ADD CONSTRAINT") {
					t.Errorf("the dropped constraint is added again: %s", s)
				}
			}
			users := ns.Tables["users"]
			eq(t, "constraint in the model", users.Constraints["users_email_key"] == nil, true)
			_, index := ns.Indexes["users_email_key"]
			eq(t, "index in the model", index, false)
			eq(t, "view", viewColumns(view(p, "users")), "id, _online_email AS email, nickname, age, bio, team_id")
		}},
	})
}

func TestDropConstraintCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		{name: "missing table", ops: "- drop_constraint: {table: nope, name: c}", op: 1, kind: "drop_constraint", field: "table", msg: []string{`table "nope" does not exist`}},
		{name: "missing constraint", ops: "- drop_constraint: {table: users, name: nope}", op: 1, kind: "drop_constraint", field: "name", msg: []string{`table "users" has no constraint "nope"`}},
		{name: "without name", ops: "- drop_constraint: {table: users}", op: 1, kind: "drop_constraint", field: "name", msg: []string{"is required"}},
		{name: "the primary key", ops: "- drop_constraint: {table: users, name: users_pkey}", op: 1, kind: "drop_constraint", field: "name", msg: []string{"primary key", "not supported"}},
		{name: "down names a missing column", ops: "- drop_constraint: {table: users, name: users_email_key, down: emale}", op: 1, kind: "drop_constraint", field: "down", msg: []string{`"emale"`}},
	})
}
