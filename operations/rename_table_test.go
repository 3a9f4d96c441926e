package operations

import (
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestRenameTableCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"rename_table", "- rename_table: {from: sessions, to: user_sessions}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			wantSQL(t, "contract", p.Contract, `ALTER TABLE "public"."sessions" RENAME TO "user_sessions"`)
			v := view(p, "user_sessions")
			if v == nil || v.Table != "sessions" || view(p, "sessions") != nil {
				t.Errorf("views %+v", p.Views)
			}
		}},
	})
}

func TestRenameTableCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Missing tables and columns.
		{name: "missing table to rename", ops: "- rename_table: {from: nope, to: x}", op: 1, kind: "rename_table", field: "from", msg: []string{`"nope"`}},
		// Names already taken.
		{name: "rename table to an existing table", ops: "- rename_table: {from: users, to: teams}", op: 1, kind: "rename_table", field: "to", msg: []string{`table "teams" already exists`}},
	})
}
