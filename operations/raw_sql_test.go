package operations

import (
	"strings"
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestRawSQLCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"sql", "- sql: {up: CREATE TABLE x (a int), down: DROP TABLE x}\n- sql: {up: CREATE TABLE y (a int)}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			eq(t, "raw", p.RawSQL, true)
			eq(t, "expand steps", len(p.Expand), 2)
			eq(t, "up", p.Expand[0].SQL[0], "CREATE TABLE x (a int)")
			eq(t, "down", p.Expand[0].Undo[0], "DROP TABLE x")
			eq(t, "op of the second", p.Expand[1].Op, 2)
			eq(t, "reversible with down", p.Expand[0].Irreversible, "")
			if !strings.Contains(p.Expand[1].Irreversible, "operation 2 has no down") || !strings.Contains(p.String(), "-- IRREVERSIBLE: the SQL of operation 2 has no down") {
				t.Errorf("a sql operation without down must be marked irreversible: %q", p.Expand[1].Irreversible)
			}
		}},
		{"sql onComplete", "- sql: {up: VACUUM users, onComplete: true}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			eq(t, "expand steps", len(p.Expand), 0)
			wantSQL(t, "contract", p.Contract, "VACUUM users")
		}},
	})
}

func TestRawSQLCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Fields.
		{name: "sql without up", ops: "- sql: {down: SELECT 1}", op: 1, kind: "sql", field: "up"},
		// Fields.
		{name: "sql onComplete with down", ops: "- sql: {up: SELECT 1, down: SELECT 2, onComplete: true}", op: 1, kind: "sql", field: "down"},
	})
}
