package operations

import "testing"

func TestCreateTableCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Missing tables and columns.
		{name: "missing referenced column", ops: "- create_table: {name: t, columns: [{name: a, type: int, references: {name: f, table: teams, column: nope}}]}", op: 1, kind: "create_table", field: "columns[0].references.column"},
		// Missing tables and columns.
		{name: "missing constraint column", ops: "- create_table: {name: t, columns: [{name: a, type: int}], constraints: [{name: c, type: unique, columns: [a, nope]}]}", op: 1, kind: "create_table", field: "constraints[0].columns[1]"},
		// Names already taken.
		{name: "create an existing table", ops: "- create_table: {name: teams, columns: [{name: id, type: int}]}", op: 1, kind: "create_table", field: "name", msg: []string{`table "teams" already exists`}},
		// Names already taken.
		{name: "create a table twice", ops: "- create_table: {name: t, columns: [{name: id, type: int}]}\n- create_table: {name: t, columns: [{name: id, type: int}]}", op: 2, kind: "create_table", field: "name", msg: []string{"already exists"}},
		// Names already taken.
		{name: "create a table renamed away in the same migration", ops: "- rename_table: {from: sessions, to: old_sessions}\n- create_table: {name: sessions, columns: [{name: id, type: int}]}", op: 2, kind: "create_table", field: "name", msg: []string{"still exists for the old version"}},
		// Names already taken.
		{name: "duplicate column in create_table", ops: "- create_table: {name: t, columns: [{name: a, type: int}, {name: a, type: text}]}", op: 1, kind: "create_table", field: "columns[1].name", msg: []string{"defined twice"}},
		// Fields.
		{name: "column without type", ops: "- create_table: {name: t, columns: [{name: a}]}", op: 1, kind: "create_table", field: "columns[0].type", msg: []string{"is required"}},
		// Fields.
		{name: "table without columns", ops: "- create_table: {name: t}", op: 1, kind: "create_table", field: "columns"},
		// Fields.
		{name: "bad on_delete", ops: "- create_table: {name: t, columns: [{name: a, type: int, references: {name: f, table: teams, column: id, on_delete: EXPLODE}}]}", op: 1, kind: "create_table", field: "columns[0].references.on_delete", msg: []string{`"EXPLODE"`}},
		// Fields.
		{name: "bad constraint type", ops: "- create_table: {name: t, columns: [{name: a, type: int}], constraints: [{name: c, type: sideways}]}", op: 1, kind: "create_table", field: "constraints[0].type", msg: []string{`"sideways"`}},
	})
}
