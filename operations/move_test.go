package operations

import (
	"errors"
	"strings"
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestMoveCompilePlans(t *testing.T) {
	t.Parallel()
	testCompilePlans(t, []compilePlanCase{
		{"add_column from another table", `
- add_column:
    table: teams
    column: {name: lead_email, type: text, nullable: true}
    from: {table: users, value: users.nickname, where: users.team_id = teams.id, several: same, down: {nickname: teams.lead_email}}
- drop_column: {table: users, column: nickname}`, nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			eq(t, "expand", p.Expand[0].SQL[0], `LOCK TABLE "public"."users" IN SHARE ROW EXCLUSIVE MODE`)
			eq(t, "expand", p.Expand[0].SQL[1], `ALTER TABLE "public"."teams" ADD COLUMN "lead_email" text`)
			// Triggers on both tables, in the same step as the column.
			wantSQL(t, "expand", p.Expand, `AFTER INSERT OR UPDATE ON "public"."users"`, `AFTER DELETE ON "public"."users"`,
				`BEFORE INSERT ON "public"."teams"`, `AFTER UPDATE ON "public"."teams"`, `BEFORE INSERT ON "public"."users"`)
			if !strings.Contains(p.Expand[0].Lock, "teams") || !strings.Contains(p.Expand[0].Lock, "users") {
				t.Errorf("the expand step's lock names one table only: %s", p.Expand[0].Lock)
			}
			wantSQL(t, "undo", []Step{{SQL: p.Expand[0].Undo}}, `DROP TRIGGER IF EXISTS`, `ALTER TABLE "public"."teams" DROP COLUMN IF EXISTS "lead_email"`)
			eq(t, "backfills", len(p.Backfill), 1)
			eq(t, "backfill table", p.Backfill[0].Table, "teams")
			eq(t, "backfill set", p.Backfill[0].Set[0].Expr, `(SELECT (users.nickname) FROM "public"."users" AS "users" WHERE (users.team_id = teams.id) LIMIT 1)`)
			// The triggers go first at complete, before the old column.
			if !strings.Contains(strings.Join(p.Contract[0].SQL, "\n"), "DROP TRIGGER IF EXISTS") {
				t.Errorf("first contract step %q does not drop the triggers", p.Contract[0].Do)
			}
			wantSQL(t, "contract", p.Contract, `DROP COLUMN "nickname"`)
			eq(t, "view", viewColumns(view(p, "teams")), "id, name, lead_email")
			s := p.String()
			for _, want := range []string{"CREATE TRIGGER", `ON "public"."users"`, `ON "public"."teams"`, "[lock: SHARE ROW EXCLUSIVE on users, then ACCESS EXCLUSIVE on teams"} {
				if !strings.Contains(s, want) {
					t.Errorf("plan text lacks %q", want)
				}
			}
		}},
		{"create_table from another table", `
- create_table:
    name: tokens
    columns: [{name: session_id, type: int, pk: true}, {name: token, type: text}]
    from: {table: sessions, values: {session_id: sessions.id, token: sessions.token}, where: tokens.session_id = sessions.id, down: {token: tokens.token}}`, nil, func(t *testing.T, p *Plan, ns *schema.Schema) {
			eq(t, "expand steps", len(p.Expand), 2)
			wantSQL(t, "expand", p.Expand, `CREATE TABLE "public"."tokens"`, `BEFORE DELETE ON "public"."sessions"`, `AFTER INSERT OR UPDATE ON "public"."tokens"`, `AFTER DELETE ON "public"."tokens"`)
			eq(t, "backfill table", p.Backfill[0].Table, "sessions")
			eq(t, "backfill insert", p.Backfill[0].Insert.Into, "tokens")
			eq(t, "backfill where", p.Backfill[0].Where, `("token" IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM "public"."tokens" AS "tokens" WHERE (tokens.session_id = sessions.id))`)
			if !strings.Contains(p.String(), `INSERT INTO "public"."tokens" ("session_id", "token") SELECT sessions.id, sessions.token FROM "public"."sessions"`) {
				t.Errorf("plan text does not show the insert:\n%s", p.String())
			}
		}},
	})
}

func TestMoveCompileErrors(t *testing.T) {
	t.Parallel()
	col := "column: {name: x, type: text, nullable: true}"
	testCompileErrors(t, []compileErrCase{
		{name: "from without table", ops: "- add_column: {table: teams, " + col + ", from: {value: users.email, where: users.team_id = teams.id}}", op: 1, kind: "add_column", field: "from.table", msg: []string{"is required"}},
		{name: "from without where", ops: "- add_column: {table: teams, " + col + ", from: {table: users, value: users.email}}", op: 1, kind: "add_column", field: "from.where", msg: []string{"is required"}},
		{name: "add_column from without value", ops: "- add_column: {table: teams, " + col + ", from: {table: users, where: users.team_id = teams.id}}", op: 1, kind: "add_column", field: "from.value"},
		{name: "from a missing table", ops: "- add_column: {table: teams, " + col + ", from: {table: nope, value: nope.x, where: nope.id = teams.id}}", op: 1, kind: "add_column", field: "from.table", msg: []string{`"nope"`}},
		{name: "from a table without key", ops: "- add_column: {table: teams, " + col + ", from: {table: logs, value: logs.line, where: true}}", op: 1, kind: "add_column", field: "from.table", msg: []string{"no primary key"}},
		{name: "an unknown rule for missing partners", ops: "- add_column: {table: teams, " + col + ", from: {table: users, value: users.email, where: users.team_id = teams.id, missing: skip}}", op: 1, kind: "add_column", field: "from.missing", msg: []string{`"skip"`, `"null" or "refuse"`}},
		{name: "an unknown rule for several partners", ops: "- add_column: {table: teams, " + col + ", from: {table: users, value: users.email, where: users.team_id = teams.id, several: first}}", op: 1, kind: "add_column", field: "from.several"},
		{name: "down to a missing column", ops: "- add_column: {table: teams, " + col + ", from: {table: users, value: users.email, where: users.team_id = teams.id, down: {mail: teams.x}}}", op: 1, kind: "add_column", field: "from.down.mail"},
		{name: "a NOT NULL moved column", ops: "- add_column: {table: teams, column: {name: x, type: text}, from: {table: users, value: users.email, where: users.team_id = teams.id}}", op: 1, kind: "add_column", field: "column.nullable"},
		{name: "up and from", ops: "- add_column: {table: teams, " + col + ", up: name, from: {table: users, value: users.email, where: users.team_id = teams.id}}", op: 1, kind: "add_column", field: "from"},
		{name: "from the table itself", ops: "- add_column: {table: teams, " + col + ", from: {table: teams, value: teams.name, where: true}}", op: 1, kind: "add_column", field: "from.table"},
		{name: "create_table from without values", ops: "- create_table: {name: t2, columns: [{name: id, type: int, pk: true}], from: {table: sessions, where: t2.id = sessions.id}}", op: 1, kind: "create_table", field: "from.values"},
		{name: "create_table from into a missing column", ops: "- create_table: {name: t2, columns: [{name: id, type: int, pk: true}], from: {table: sessions, values: {nope: sessions.id}, where: t2.id = sessions.id}}", op: 1, kind: "create_table", field: "from.values.nope"},
		{name: "create_table with several", ops: "- create_table: {name: t2, columns: [{name: id, type: int, pk: true}], from: {table: sessions, values: {id: sessions.id}, where: t2.id = sessions.id, several: same}}", op: 1, kind: "create_table", field: "from.several"},
	})
}

// TestMoveParseErrors: every SQL fragment of from is proven to be one
// expression of its kind when the file is read, before anything compiles.
func TestMoveParseErrors(t *testing.T) {
	t.Parallel()
	col := "column: {name: x, type: text, nullable: true}"
	for _, c := range []compileErrCase{
		{name: "where is not one expression", ops: "- add_column: {table: teams, " + col + ", from: {table: users, value: users.email, where: \"true; DROP TABLE users\"}}", op: 1, kind: "add_column", field: "from.where"},
		{name: "value is not one expression", ops: "- add_column: {table: teams, " + col + ", from: {table: users, value: \"1) FROM users; --\", where: users.team_id = teams.id}}", op: 1, kind: "add_column", field: "from.value"},
		{name: "create_table values is one expression each", ops: "- create_table: {name: t2, columns: [{name: id, type: int, pk: true}], from: {table: sessions, values: {id: \"1, 2\"}, where: t2.id = sessions.id}}", op: 1, kind: "create_table", field: "from.values.id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("m.yaml", []byte("operations:\n"+c.ops))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("parse: %v, want an *Error", err)
			}
			checkErr(t, e, c.op, c.kind, c.field, c.msg...)
		})
	}
}
