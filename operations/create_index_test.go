package operations

import (
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestCreateIndexCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"create_index on an expression", "- create_index: {table: users, name: users_email_lower, columns: [{expression: lower(email)}]}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			wantSQL(t, "expand", p.Expand, `CREATE INDEX CONCURRENTLY "users_email_lower" ON "public"."users" ((lower("email")))`)
		}},
		{"index fields in pgroll's form", "- create_index: {table: users, name: i, columns: [{column: email, collate: C, sort: DESC, nulls: LAST}, {column: nickname, opclass: {name: text_pattern_ops, params: [a=1, b = 'x']}}]}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			wantSQL(t, "expand", p.Expand, `("email" COLLATE "C" DESC NULLS LAST, "nickname" "text_pattern_ops" ("a" = 1, "b" = 'x'))`)
		}},
	})
}

func TestCreateIndexCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// Missing tables and columns.
		{name: "missing table to index", ops: "- create_index: {table: nope, name: i, columns: [a]}", op: 1, kind: "create_index", field: "table"},
		// Missing tables and columns.
		{name: "missing index column", ops: "- create_index: {table: users, name: i, columns: [email, nope]}", op: 1, kind: "create_index", field: "columns[1]", msg: []string{`"nope"`}},
		// Missing tables and columns.
		{name: "missing map-form index column", ops: "- create_index: {table: users, name: i, columns: {email: {sort: DESC}, nope: null}}", op: 1, kind: "create_index", field: "columns[1]", msg: []string{`"nope"`}},
		// Missing tables and columns.
		{name: "missing include column", ops: "- create_index: {table: users, name: i, columns: [email], include: [nope]}", op: 1, kind: "create_index", field: "include[0]"},
		// What earlier operations of the same migration did.
		{name: "column renamed by alter_column earlier", ops: "- alter_column: {table: users, column: nickname, name: nick}\n- create_index: {table: users, name: i, columns: [nickname]}", op: 2, kind: "create_index", field: "columns[0]", msg: []string{"renamed or dropped"}},
		// What earlier operations of the same migration did.
		{name: "column of a table created later", ops: "- create_index: {table: posts, name: i, columns: [id]}\n- create_table: {name: posts, columns: [{name: id, type: int}]}", op: 1, kind: "create_index", field: "table", msg: []string{`table "posts" does not exist`}},
		// Names already taken.
		{name: "duplicate index name", ops: "- create_index: {table: users, name: users_nickname_idx, columns: [age]}", op: 1, kind: "create_index", field: "name", msg: []string{`"users_nickname_idx" is already used`}},
		// Names already taken.
		{name: "index name of a constraint", ops: "- create_index: {table: users, name: users_email_key, columns: [age]}", op: 1, kind: "create_index", field: "name", msg: []string{"already used"}},
		// Names already taken.
		{name: "index name of a primary key", ops: "- create_index: {table: sessions, name: users_pkey, columns: [token]}", op: 1, kind: "create_index", field: "name"},
		// Names already taken.
		{name: "index name used twice", ops: "- create_index: {table: users, name: i, columns: [age]}\n- create_index: {table: sessions, name: i, columns: [token]}", op: 2, kind: "create_index", field: "name", msg: []string{`"i" is already used`}},
		// Fields.
		{name: "index without columns", ops: "- create_index: {table: users, name: i}", op: 1, kind: "create_index", field: "columns"},
		// Fields.
		{name: "index without name", ops: "- create_index: {table: users, columns: [age]}", op: 1, kind: "create_index", field: "name"},
		// Fields.
		{name: "bad index method", ops: "- create_index: {table: users, name: i, columns: [age], method: bitmap}", op: 1, kind: "create_index", field: "method", msg: []string{`"bitmap"`}},
		// Fields.
		{name: "bad sort", ops: "- create_index: {table: users, name: i, columns: {age: {sort: UP}}}", op: 1, kind: "create_index", field: "columns[0].sort"},
		// Fields.
		{name: "bad nulls", ops: "- create_index: {table: users, name: i, columns: [{expression: lower(email), nulls: MIDDLE}]}", op: 1, kind: "create_index", field: "columns[0].nulls"},
		// Fields.
		{name: "opclass without name", ops: "- create_index: {table: users, name: i, columns: {email: {opclass: {params: {a: '1'}}}}}", op: 1, kind: "create_index", field: "columns[0].opclass.name"},
		// Fields.
		{name: "nulls_not_distinct on a plain index", ops: "- create_index: {table: users, name: i, columns: [age], nulls_not_distinct: true}", op: 1, kind: "create_index", field: "nulls_not_distinct"},
	})
}
