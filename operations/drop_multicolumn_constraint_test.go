package operations

import "testing"

func TestDropMultiColumnConstraintCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "drop_multicolumn_constraint down names a missing column", ops: "- drop_multicolumn_constraint: {table: users, name: users_email_key, down: {email: emale}}", op: 1, kind: "drop_multicolumn_constraint", field: "down.email", msg: []string{`"emale"`}},
	})
}
