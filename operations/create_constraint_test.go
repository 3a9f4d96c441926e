package operations

import (
	"strings"
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestCreateConstraintCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"create_constraint on a table of the same migration", `- create_table: {name: t, columns: [{name: a, type: int}, {name: r, type: int4range, nullable: true}]}
- create_constraint: {table: t, name: t_pk, type: primary_key, columns: [a], up: {a: a}, down: {a: a}}
- create_constraint: {table: t, name: t_x, type: exclude, exclude: {index_method: gist, elements: "r WITH &&", predicate: a > 0}}`, nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			// No rows, no old version: added as they are, in expand.
			eq(t, "expand steps", len(p.Expand), 3)
			eq(t, "finish steps", len(p.Finish), 0)
			eq(t, "pk", p.Expand[1].SQL[0], `ALTER TABLE "public"."t" ADD CONSTRAINT "t_pk" PRIMARY KEY ("a")`)
			eq(t, "exclude", p.Expand[2].SQL[0], `ALTER TABLE "public"."t" ADD CONSTRAINT "t_x" EXCLUDE USING "gist" (r WITH &&) WHERE (a > 0)`)
			eq(t, "primary key in the model", strings.Join(ns.Tables["t"].PrimaryKey, ","), "a")
		}},
		{"exclude on an existing table", "- create_constraint: {table: users, name: u_x, type: exclude, exclude: {index_method: btree, elements: email WITH =}}", nil, func(t *testing.T, p *Plan, _ *schema.Schema) {
			eq(t, "finish steps", len(p.Finish), 1)
			eq(t, "sql", p.Finish[0].SQL[0], `ALTER TABLE "public"."users" ADD CONSTRAINT "u_x" EXCLUDE USING "btree" ("email" WITH =)`)
			if !strings.Contains(p.Finish[0].Lock, "ACCESS EXCLUSIVE for the whole index build") {
				t.Errorf("lock %q does not say that the build holds ACCESS EXCLUSIVE", p.Finish[0].Lock)
			}
		}},
	})
}

func TestCreateConstraintCompileErrors(t *testing.T) {
	t.Parallel()
	testCompileErrors(t, []compileErrCase{
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "create_constraint up names a missing column", ops: "- create_constraint: {table: users, name: c, type: check, columns: [age], check: age > 0, up: {age: \"greatest(agee, 0)\"}, down: {age: age}}", op: 1, kind: "create_constraint", field: "up.age", msg: []string{`"agee"`}},
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "exclude without elements", ops: "- create_constraint: {table: users, name: c, type: exclude, exclude: {index_method: gist}}", op: 1, kind: "create_constraint", field: "exclude.elements"},
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "create_constraint up for a column not in it, on a new table", ops: "- create_table: {name: t, columns: [{name: a, type: int}]}\n- create_constraint: {table: t, name: t_pk, type: primary_key, columns: [a], up: {b: b}}", op: 2, kind: "create_constraint", field: "up.b"},
		// up and down name columns of the row: one that does not exist is
		// reported here, not by PostgreSQL inside a trigger function at start.
		{name: "second primary key on a new table", ops: "- create_table: {name: t, columns: [{name: a, type: int, pk: true}]}\n- create_constraint: {table: t, name: t_pk, type: primary_key, columns: [a]}", op: 2, kind: "create_constraint", field: "type", msg: []string{"already has a primary key"}},
	})
}
