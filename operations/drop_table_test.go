package operations

import (
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestDropTableCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"drop_table", "- drop_table: {name: sessions}", nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			eq(t, "expand steps", len(p.Expand), 0)
			wantSQL(t, "contract", p.Contract, `DROP TABLE "public"."sessions"`)
			eq(t, "view", view(p, "sessions") == nil, true)
			eq(t, "model", ns.Tables["sessions"] == nil, true)
		}},
	})
}

func TestDropTableCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Missing tables and columns.
		{name: "missing table to drop", ops: "- drop_table: {name: nope}", op: 1, kind: "drop_table", field: "name", msg: []string{`"nope"`}},
		// Missing tables and columns.
		{name: "table names are case-sensitive", ops: "- drop_table: {name: Users}", op: 1, kind: "drop_table", field: "name", msg: []string{`"Users"`}},
		// What earlier operations of the same migration did.
		{name: "table dropped earlier", ops: "- drop_table: {name: sessions}\n- drop_table: {name: sessions}", op: 2, kind: "drop_table", field: "name", msg: []string{"renamed or dropped"}},
		// Data the new version would break.
		{name: "drop a referenced table", ops: "- drop_table: {name: teams}", op: 1, kind: "drop_table", field: "name", msg: []string{`foreign key "users_team_fk"`}},
	})
}
